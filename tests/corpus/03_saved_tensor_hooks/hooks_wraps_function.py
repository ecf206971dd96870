# expect: fails test_hooks_memory test_hooks_grad_api test_hooks_double_backward
# why: reuses Part 2's reentrant CheckpointFunction (random and autocast state replayed): forward without grad,
#   autograd.grad leaks into .grad, a frozen input stops the parameters' gradients, and there is no second derivative
# %% cell: hooks_answer
class CheckpointFunction(torch.autograd.Function):
    @staticmethod
    def forward(ctx, run_function, preserve_rng_state, *args):
        ctx.run_function, ctx.preserve_rng_state = run_function, preserve_rng_state
        ctx.devices = [torch.cuda.current_device()] if torch.cuda.is_initialized() else []
        ctx.others = [None if torch.is_tensor(a) else a for a in args]
        ctx.save_for_backward(*(a if torch.is_tensor(a) else None for a in args))
        ctx.rng = (torch.get_rng_state(), [torch.cuda.get_rng_state(d) for d in ctx.devices])
        ctx.amp = [(d, torch.get_autocast_dtype(d), torch.is_autocast_enabled(d)) for d in ("cpu", DEVICE.type)]
        with torch.no_grad():
            return run_function(*args)

    @staticmethod
    def backward(ctx, *grad_outputs):
        args = [other if saved is None else saved.detach().requires_grad_(saved.requires_grad)
                for other, saved in zip(ctx.others, ctx.saved_tensors)]
        with torch.random.fork_rng(devices=ctx.devices, enabled=ctx.preserve_rng_state):
            if ctx.preserve_rng_state:
                torch.set_rng_state(ctx.rng[0])
                for d, s in zip(ctx.devices, ctx.rng[1]):
                    torch.cuda.set_rng_state(s, d)
            with torch.enable_grad(), torch.autocast(*ctx.amp[0][:2], ctx.amp[0][2]), \
                    torch.autocast(*ctx.amp[1][:2], ctx.amp[1][2]):
                outputs = ctx.run_function(*args)
        outputs = (outputs,) if torch.is_tensor(outputs) else outputs
        pairs = [(o, g) for o, g in zip(outputs, grad_outputs) if torch.is_tensor(o) and o.requires_grad]
        torch.autograd.backward([o for o, _ in pairs], [g for _, g in pairs])
        return (None, None) + tuple(a.grad if torch.is_tensor(a) else None for a in args)


def hooks_checkpoint(function, *args, preserve_rng_state=True):
    return CheckpointFunction.apply(function, preserve_rng_state, *args)
