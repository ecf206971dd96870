# expect: fails test_backward test_kinks test_gradcheck test_robustness test_second_derivative
# why: only two regions: the middle formula is used for x > 3 too
# %% cell: hardswish_answer
class HardSwishFunction(Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x * (x + 3).clamp(0, 6) / 6

    @staticmethod
    def backward(ctx, grad_output):
        (x,) = ctx.saved_tensors
        slope = torch.where(x <= -3, torch.zeros_like(x), (2 * x + 3) / 6)
        return grad_output * slope


def hard_swish_custom(x):
    return HardSwishFunction.apply(x)
