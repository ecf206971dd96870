# expect: full
# why: a correct answer whose cell ends with a scratch comparison against F.silu (not inside any graded test):
#   comparing is fine, only a graded test whose own run shows the built-in scores zero
# %% cell: swish_answer
class ModernSwishFunction(Function):
    generate_vmap_rule = True

    @staticmethod
    def forward(x):
        return x * torch.sigmoid(x)

    @staticmethod
    def setup_context(ctx, inputs, output):
        ctx.save_for_backward(inputs[0])

    @staticmethod
    def backward(ctx, grad_output):
        (x,) = ctx.saved_tensors
        s = torch.sigmoid(x)
        return grad_output * s * (1 + x * (1 - s))


scratch = torch.linspace(-6, 6, 49, device=DEVICE)
print((ModernSwishFunction.apply(scratch) - F.silu(scratch)).abs().max())
