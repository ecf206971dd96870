# expect: full
# why: forward with torch.minimum/maximum, backward as float multiplications of masks (piecewise sum)
# %% cell: hardswish_answer
class HardSwishFunction(Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        h = torch.minimum(torch.maximum(x + 3, torch.zeros_like(x)), torch.full_like(x, 6.0))
        return x * h / 6

    @staticmethod
    def backward(ctx, grad_output):
        (x,) = ctx.saved_tensors
        middle = (x > -3).to(x.dtype) * (x < 3).to(x.dtype)
        right = (x >= 3).to(x.dtype)
        return grad_output * (middle * (2 * x + 3) / 6 + right)


def hard_swish_custom(x):
    return HardSwishFunction.apply(x)
