# expect: full
# why: sigmoid as reciprocal(1 + exp(-x)), the second-derivative-friendly product rule written out
# %% cell: swish_answer
class ModernSwishFunction(Function):
    generate_vmap_rule = True

    @staticmethod
    def forward(x):
        return x * torch.reciprocal(1 + torch.exp(-x))

    @staticmethod
    def setup_context(ctx, inputs, output):
        ctx.save_for_backward(*inputs)

    @staticmethod
    def backward(ctx, grad_output):
        (x,) = ctx.saved_tensors
        s = torch.reciprocal(1 + torch.exp(-x))
        ds = s * (1 - s)
        return grad_output * s + grad_output * x * ds
