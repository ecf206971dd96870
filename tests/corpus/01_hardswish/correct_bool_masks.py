# expect: full
# why: a second correct implementation: regions as float masks, summed
# %% cell: hardswish_answer
class HardSwishFunction(Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x * F.relu6(x + 3) / 6

    @staticmethod
    def backward(ctx, grad_output):
        (x,) = ctx.saved_tensors
        middle = ((x > -3) & (x < 3)).to(x.dtype)
        upper = (x >= 3).to(x.dtype)
        return grad_output * (middle * (2 * x + 3) / 6 + upper)


def hard_swish_custom(x):
    return HardSwishFunction.apply(x)
