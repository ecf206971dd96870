# expect: fails test_forward test_gradcheck test_robustness
# why: forward bug: ReLU instead of ReLU6 (no upper clamp), so x > 3 gives x (x + 3) / 6
# %% cell: hardswish_answer
class HardSwishFunction(Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x * torch.relu(x + 3) / 6

    @staticmethod
    def backward(ctx, grad_output):
        (x,) = ctx.saved_tensors
        slope = (2 * x + 3) / 6
        slope = torch.where(x >= 3, torch.ones_like(x), slope)
        slope = torch.where(x <= -3, torch.zeros_like(x), slope)
        return grad_output * slope


def hard_swish_custom(x):
    return HardSwishFunction.apply(x)
