# expect: fails test_backward test_gradcheck test_robustness test_second_derivative
# why: product rule slip: differentiates x * (x + 3) / 6 as (x + 3) / 6
# selfcheck: hardswish_selfcheck fails "not at a kink"
# %% cell: hardswish_answer
class HardSwishFunction(Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x * (x + 3).clamp(0, 6) / 6

    @staticmethod
    def backward(ctx, grad_output):
        (x,) = ctx.saved_tensors
        slope = (x + 3) / 6
        slope = torch.where(x >= 3, torch.ones_like(x), slope)
        slope = torch.where(x <= -3, torch.zeros_like(x), slope)
        return grad_output * slope


def hard_swish_custom(x):
    return HardSwishFunction.apply(x)
