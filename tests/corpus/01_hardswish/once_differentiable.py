# expect: fails test_second_derivative
# why: backward decorated with @once_differentiable (from the docs): first derivatives right, double backward raises
# %% cell: hardswish_answer
from torch.autograd.function import once_differentiable


class HardSwishFunction(Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x * torch.clamp(x + 3, 0, 6) / 6

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_output):
        (x,) = ctx.saved_tensors
        slope = torch.where(x >= 3, 1.0, (2 * x + 3) / 6)
        slope = torch.where(x <= -3, 0.0, slope)
        return grad_output * slope


def hard_swish_custom(x):
    return HardSwishFunction.apply(x)
