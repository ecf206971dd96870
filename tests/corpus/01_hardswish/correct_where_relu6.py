# expect: full
# why: forward with F.relu6, backward with nested torch.where
# %% cell: hardswish_answer
class HardSwishFunction(Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x * F.relu6(x + 3) / 6

    @staticmethod
    def backward(ctx, grad_output):
        (x,) = ctx.saved_tensors
        slope = torch.where(x <= -3, torch.zeros_like(x), torch.where(x >= 3, torch.ones_like(x), (2 * x + 3) / 6))
        return grad_output * slope


def hard_swish_custom(x):
    return HardSwishFunction.apply(x)
