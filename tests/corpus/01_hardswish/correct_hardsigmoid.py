# expect: full
# why: built on F.hardsigmoid: x * hardsigmoid(x), backward hardsigmoid(x) + x * [|x| < 3] / 6 with a float mask;
#   hardsigmoid's float64 backward returns float32(1/6), so its second derivative is 1/3 to 3e-8 only
# %% cell: hardswish_answer
class HardSwishFunction(Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x * F.hardsigmoid(x)

    @staticmethod
    def backward(ctx, grad_output):
        (x,) = ctx.saved_tensors
        inside = ((x > -3) & (x < 3)).to(x.dtype)
        return grad_output * (F.hardsigmoid(x) + x * inside / 6)


def hard_swish_custom(x):
    return HardSwishFunction.apply(x)
