# expect: fails test_second_derivative
# why: saves h = ReLU6(x + 3) from forward: h is a constant to autograd, second derivative 1/6 instead of 1/3
# %% cell: hardswish_answer
class HardSwishFunction(Function):
    @staticmethod
    def forward(ctx, x):
        h = F.relu6(x + 3)
        ctx.save_for_backward(x, h)
        return x * h / 6

    @staticmethod
    def backward(ctx, grad_output):
        x, h = ctx.saved_tensors
        inside = ((x > -3) & (x < 3)).to(x.dtype)
        return grad_output * (h + x * inside) / 6  # product rule: (h + x h') / 6


def hard_swish_custom(x):
    return HardSwishFunction.apply(x)
