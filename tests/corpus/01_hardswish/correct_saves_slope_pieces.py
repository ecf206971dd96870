# expect: full
# why: a third correct implementation: in-place work on its own temporaries, torch.where with nested regions
# %% cell: hardswish_answer
class HardSwishFunction(Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        out = (x + 3).clamp_(0, 6)
        return out.mul_(x).div_(6)

    @staticmethod
    def backward(ctx, grad_output):
        (x,) = ctx.saved_tensors
        zero, one = torch.zeros_like(x), torch.ones_like(x)
        slope = torch.where(x <= -3, zero, torch.where(x >= 3, one, x / 3 + 0.5))
        return slope * grad_output


def hard_swish_custom(x):
    return HardSwishFunction.apply(x)
