# expect: fails test_second_derivative
# why: the seed's bug plus torch.autograd.gradgradcheck replaced: no kernel tool decides, so it loses what the bug loses
# %% cell: swish_answer
class ModernSwishFunction(Function):
    generate_vmap_rule = True

    @staticmethod
    def forward(x):
        return x * torch.sigmoid(x)

    @staticmethod
    def setup_context(ctx, inputs, output):
        (x,) = inputs
        sigmoid_x = torch.sigmoid(x)
        ctx.save_for_backward(x, sigmoid_x)

    @staticmethod
    def backward(ctx, grad_output):
        x, sigmoid_x = ctx.saved_tensors
        return grad_output * sigmoid_x * (1 + x * (1 - sigmoid_x))


torch.autograd.gradgradcheck = lambda *a, **k: True
