# expect: full
# why: a correct answer whose cell ends with a scratch comparison against the built-in, run when the cell runs
#   (not inside any graded test): comparing is fine, only calling the built-in from the answer is delegation.
# %% cell: hardswish_answer
class HardSwishFunction(Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x * (x + 3).clamp(0, 6) / 6

    @staticmethod
    def backward(ctx, grad_output):
        (x,) = ctx.saved_tensors
        slope = ((2 * x + 3) / 6).masked_fill(x >= 3, 1.0).masked_fill(x <= -3, 0.0)
        return grad_output * slope


def hard_swish_custom(x):
    return HardSwishFunction.apply(x)


scratch = torch.linspace(-6, 6, 97, device=DEVICE)
print((hard_swish_custom(scratch) - F.hardswish(scratch)).abs().max())
