# expect: full
# why: a correct rule, then a scratch comparison with torch.softmax under vmap at the end of the cell (not inside any
#   graded test): comparing is fine, only a graded test whose own run shows the built-in scores zero
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
        return NumpySoftmaxFunction.apply(x.movedim(b, 0)), 0


scratch = torch.randn(3, 4, 5, dtype=torch.float64)
print((torch.func.vmap(NumpySoftmaxFunction.apply, in_dims=2)(scratch)
       - torch.func.vmap(lambda t: torch.softmax(t, dim=-1), in_dims=2)(scratch)).abs().max())
