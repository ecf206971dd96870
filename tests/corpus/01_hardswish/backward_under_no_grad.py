# expect: fails test_second_derivative
# why: backward under torch.no_grad(): first derivatives right, second derivatives lost (double backward raises)
# selfcheck: hardswish_selfcheck fails "gradgradcheck failed"
# %% cell: hardswish_answer
class HardSwishFunction(Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x * (x + 3).clamp(0, 6) / 6

    @staticmethod
    def backward(ctx, grad_output):
        (x,) = ctx.saved_tensors
        with torch.no_grad():
            slope = (2 * x + 3) / 6
            slope = slope.masked_fill(x >= 3, 1.0).masked_fill(x <= -3, 0.0)
            return grad_output * slope


def hard_swish_custom(x):
    return HardSwishFunction.apply(x)
