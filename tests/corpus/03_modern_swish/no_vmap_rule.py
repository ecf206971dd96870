# expect: fails test_torch_func
# why: correct setup_context Function without generate_vmap_rule = True: torch.func.vmap refuses it
# %% cell: swish_answer
class ModernSwishFunction(Function):
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
