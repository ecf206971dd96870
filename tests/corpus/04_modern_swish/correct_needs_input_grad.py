# expect: full
# why: torch.special.expit, saves x and the output, skips work when no gradient is needed
# %% cell: swish_answer
class ModernSwishFunction(Function):
    generate_vmap_rule = True

    @staticmethod
    def forward(x):
        return x * torch.special.expit(x)

    @staticmethod
    def setup_context(ctx, inputs, output):
        ctx.save_for_backward(inputs[0], output)

    @staticmethod
    def backward(ctx, grad_output):
        if not ctx.needs_input_grad[0]:
            return None
        x, y = ctx.saved_tensors
        s = torch.special.expit(x)
        return grad_output * (y + s * (1 - y))
