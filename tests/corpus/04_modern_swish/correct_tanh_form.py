# expect: full
# why: sigmoid written with tanh: (1 + tanh(x / 2)) / 2, recomputed in backward
# %% cell: swish_answer
class ModernSwishFunction(Function):
    generate_vmap_rule = True

    @staticmethod
    def forward(x):
        return x * (1 + torch.tanh(x / 2)) / 2

    @staticmethod
    def setup_context(ctx, inputs, output):
        ctx.save_for_backward(inputs[0])

    @staticmethod
    def backward(ctx, grad_output):
        (x,) = ctx.saved_tensors
        s = (1 + torch.tanh(x / 2)) / 2
        return grad_output * (s + x * s * (1 - s))
