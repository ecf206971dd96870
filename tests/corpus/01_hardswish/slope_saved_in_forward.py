# expect: fails test_second_derivative
# why: computes the slope in forward and saves it: a constant to autograd, so no second derivatives
# %% cell: hardswish_answer
class HardSwishFunction(Function):
    @staticmethod
    def forward(ctx, x):
        slope = (2 * x + 3) / 6
        slope = torch.where(x >= 3, torch.ones_like(x), slope)
        slope = torch.where(x <= -3, torch.zeros_like(x), slope)
        ctx.save_for_backward(slope)  # saves work in backward
        return x * torch.clamp(x + 3, 0, 6) / 6

    @staticmethod
    def backward(ctx, grad_output):
        (slope,) = ctx.saved_tensors
        return grad_output * slope


def hard_swish_custom(x):
    return HardSwishFunction.apply(x)
