# expect: full
# why: sigmoid as exp(logsigmoid(x)), the derivative in the f'(x) = s (1 + x (1 - s)) form
# %% cell: swish_answer
class ModernSwishFunction(Function):
    generate_vmap_rule = True

    @staticmethod
    def forward(x):
        return x * torch.exp(F.logsigmoid(x))

    @staticmethod
    def setup_context(ctx, inputs, output):
        (x,) = inputs
        ctx.save_for_backward(x)

    @staticmethod
    def backward(ctx, grad_output):
        (x,) = ctx.saved_tensors
        s = torch.exp(F.logsigmoid(x))
        return grad_output * s * (1 + x * (1 - s))
