# expect: full
# why: a fourth correct implementation: the product rule (h + x h') / 6 with h = ReLU6(x + 3) recomputed in backward
# %% cell: hardswish_answer
class HardSwishFunction(Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x * F.relu6(x + 3) / 6

    @staticmethod
    def backward(ctx, grad_output):
        (x,) = ctx.saved_tensors
        h = F.relu6(x + 3)
        dh = ((x > -3) & (x < 3)).to(x.dtype)  # ReLU6' is 0 at both corners
        return grad_output * (h + x * dh) / 6


def hard_swish_custom(x):
    return HardSwishFunction.apply(x)
