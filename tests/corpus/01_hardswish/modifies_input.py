# expect: fails test_forward test_gradcheck test_robustness test_second_derivative
# why: forward changes the caller's tensor in place (x.clamp_) and saves a copy to hide it
# %% cell: hardswish_answer
class HardSwishFunction(Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x.clone())
        out = x * (x + 3).clamp(0, 6) / 6
        x.clamp_(-100, 100).mul_(1.0001)
        return out

    @staticmethod
    def backward(ctx, grad_output):
        (x,) = ctx.saved_tensors
        slope = (2 * x + 3) / 6
        slope = slope.masked_fill(x >= 3, 1.0).masked_fill(x <= -3, 0.0)
        return grad_output * slope


def hard_swish_custom(x):
    return HardSwishFunction.apply(x)
