# expect: fails test_backward test_second_derivative
# why: saves the output and derives sigmoid as y / x: NaN at x = 0 (random gradcheck inputs never hit 0)
# %% cell: swish_answer
class ModernSwishFunction(Function):
    generate_vmap_rule = True

    @staticmethod
    def forward(x):
        return x * torch.sigmoid(x)

    @staticmethod
    def setup_context(ctx, inputs, output):
        (x,) = inputs
        ctx.save_for_backward(x, output)

    @staticmethod
    def backward(ctx, grad_output):
        x, y = ctx.saved_tensors
        s = y / x
        return grad_output * (y + s * (1 - y))
