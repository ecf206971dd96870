# expect: full
# why: correct, and its forward calls the lesson's via_relu6 (defined in a show-only cell): grading must run that cell
# %% cell: hardswish_answer
class HardSwishFunction(Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return via_relu6(x)

    @staticmethod
    def backward(ctx, grad_output):
        (x,) = ctx.saved_tensors
        slope = torch.where(x >= 3, torch.ones_like(x), (2 * x + 3) / 6)
        return grad_output * torch.where(x <= -3, torch.zeros_like(x), slope)


def hard_swish_custom(x):
    return HardSwishFunction.apply(x)
