# expect: fails test_second_derivative
# why: a common buggy version plus gradgradcheck replaced: no kernel tool decides, it loses what the bug loses
# %% cell: swish_answer
class ModernSwishFunction(Function):
    generate_vmap_rule = True

    @staticmethod
    def forward(x):
        return x * torch.sigmoid(x)

    @staticmethod
    def setup_context(ctx, inputs, output):
        (x,) = inputs
        sigmoid_x = torch.sigmoid(x)
        ctx.save_for_backward(x, sigmoid_x)

    @staticmethod
    def backward(ctx, grad_output):
        x, sigmoid_x = ctx.saved_tensors
        return grad_output * sigmoid_x * (1 + x * (1 - sigmoid_x))


torch.autograd.gradgradcheck = lambda *a, **k: True


# %% cell: vmap_rule_answer
class NumpySoftmaxFunction(Function):
    """Softmax over the last dimension, computed by NumPy; forward, setup_context and backward are given."""

    @staticmethod
    def forward(x):
        a = x.detach().cpu().numpy()
        e = np.exp(a - a.max(axis=-1, keepdims=True))
        return torch.as_tensor(e / e.sum(axis=-1, keepdims=True)).to(x.device)

    @staticmethod
    def setup_context(ctx, inputs, output):
        ctx.save_for_backward(output)

    @staticmethod
    def backward(ctx, grad_output):
        (y,) = ctx.saved_tensors
        return y * (grad_output - (grad_output * y).sum(dim=-1, keepdim=True))

    @staticmethod
    def vmap(info, in_dims, x):
        (x_bdim,) = in_dims
        x = x.movedim(x_bdim, 0)
        return NumpySoftmaxFunction.apply(x), 0
