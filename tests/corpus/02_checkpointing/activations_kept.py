# expect: fails test_memory
# why: builds the graph in forward and keeps it for backward: right gradients, no memory saved
# %% cell: checkpoint_answer
class CheckpointFunction(Function):
    @staticmethod
    def forward(ctx, run_function, preserve_rng_state, *args):
        ctx.run_function = run_function
        ctx.preserve_rng_state = preserve_rng_state
        ctx.devices = [torch.cuda.current_device()] if torch.cuda.is_initialized() else []
        if preserve_rng_state:
            ctx.cpu_state = torch.get_rng_state()
            ctx.cuda_states = [torch.cuda.get_rng_state(d) for d in ctx.devices]
        with torch.enable_grad():
            inputs = [a.detach().requires_grad_(a.requires_grad) if torch.is_tensor(a) else a for a in args]
            ctx.kept_inputs = inputs
            ctx.kept_outputs = run_function(*inputs)
        out = ctx.kept_outputs
        return tuple(o.detach() for o in out) if isinstance(out, tuple) else out.detach()

    @staticmethod
    def backward(ctx, *grad_outputs):
        args = ctx.kept_inputs
        outputs = ctx.kept_outputs
        if torch.is_tensor(outputs):
            outputs = (outputs,)
        pairs = [(o, g) for o, g in zip(outputs, grad_outputs) if o.requires_grad]
        torch.autograd.backward([o for o, _ in pairs], [g for _, g in pairs])
        return (None, None) + tuple(a.grad if torch.is_tensor(a) else None for a in args)


def checkpoint(function, *args, preserve_rng_state=True):
    return CheckpointFunction.apply(function, preserve_rng_state, *args)
