# expect: fails test_backward test_kinks test_gradcheck test_second_derivative
# why: returns the local slope and ignores grad_output (the chain rule)
# %% cell: hardswish_answer
class HardSwishFunction(Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x * (x + 3).clamp(0, 6) / 6

    @staticmethod
    def backward(ctx, grad_output):
        (x,) = ctx.saved_tensors
        slope = (2 * x + 3) / 6
        slope = torch.where(x >= 3, torch.ones_like(x), slope)
        return torch.where(x <= -3, torch.zeros_like(x), slope)


def hard_swish_custom(x):
    return HardSwishFunction.apply(x)
