# expect: full
# why: moves the batch to the front, then back where it was: out_dims = in_dims[0]
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
        (b,) = in_dims
        y = NumpySoftmaxFunction.apply(torch.movedim(x, b, 0))
        return torch.movedim(y, 0, b), b
