# expect: fails test_vmap_rule test_vmap_rule_grad
# why: reshape(info.batch_size, -1): softmax over all of a sample's elements, right only for 1-d samples
# %% cell: swish_answer
class ModernSwishFunction(Function):
    generate_vmap_rule = True

    @staticmethod
    def forward(x):
        return x * torch.sigmoid(x)

    @staticmethod
    def setup_context(ctx, inputs, output):
        (x,) = inputs
        ctx.save_for_backward(x)

    @staticmethod
    def backward(ctx, grad_output):
        (x,) = ctx.saved_tensors
        s = torch.sigmoid(x)
        return grad_output * s * (1 + x * (1 - s))


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
        x = x.movedim(in_dims[0], 0)
        flat = x.reshape(info.batch_size, -1)
        y = NumpySoftmaxFunction.apply(flat)
        return y.reshape(x.shape), 0
