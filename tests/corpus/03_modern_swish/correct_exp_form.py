# expect: full
# why: a third correct implementation: x / (1 + exp(-x)), derivative s + x e s^2 with e = exp(-x)
# %% cell: swish_answer
class ModernSwishFunction(Function):
    generate_vmap_rule = True

    @staticmethod
    def forward(input):
        return input / (1 + torch.exp(-input))

    @staticmethod
    def setup_context(ctx, inputs, output):
        (x,) = inputs
        ctx.save_for_backward(x)

    @staticmethod
    def backward(ctx, grad_output):
        (x,) = ctx.saved_tensors
        e = torch.exp(-x)
        s = 1 / (1 + e)
        return grad_output * (s + x * e * s * s)
