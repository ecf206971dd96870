# expect: fails test_backward test_kinks
# why: a common buggy version: middle formula on the closed interval [-3, 3] (-0.5 and 1.5 at the kinks)
# selfcheck: hardswish_selfcheck fails "at the kink x = "
# %% cell: hardswish_answer
class HardSwishFunction(Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x * torch.clamp(x + 3, min=0, max=6) / 6

    @staticmethod
    def backward(ctx, grad_output):
        (x,) = ctx.saved_tensors
        grad_input = torch.zeros_like(x)
        mask_middle = (x >= -3) & (x <= 3)
        grad_input[mask_middle] = (2 * x[mask_middle] + 3) / 6
        grad_input[x > 3] = 1.0
        return grad_output * grad_input


def hard_swish_custom(x):
    return HardSwishFunction.apply(x)
