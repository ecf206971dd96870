# expect: fails test_second_derivative
# why: detaches the saved input in backward ("to be safe"): first derivatives right, second derivatives cut off
# %% cell: hardswish_answer
class HardSwishFunction(Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x * (x + 3).clamp(min=0, max=6) / 6

    @staticmethod
    def backward(ctx, grad_output):
        x = ctx.saved_tensors[0].detach()
        middle = (x > -3) & (x < 3)
        slope = torch.zeros_like(x)
        slope[middle] = (2 * x[middle] + 3) / 6
        slope[x >= 3] = 1
        return grad_output * slope


def hard_swish_custom(x):
    return HardSwishFunction.apply(x)
