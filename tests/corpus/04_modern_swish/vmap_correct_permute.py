# expect: full
# why: permute with the batch first, the other dimensions in order
# %% cell: vmap_rule_answer
class NumpySoftmaxFunction(Function):
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
        b = in_dims[0]
        order = [b] + [d for d in range(x.dim()) if d != b]
        return NumpySoftmaxFunction.apply(x.permute(*order)), 0
