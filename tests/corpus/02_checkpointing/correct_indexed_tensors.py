# expect: full
# why: a correct variant that keeps the tensor arguments' positions, records every visible GPU's generator, and
#   enters each device type's recorded autocast state with torch.autocast in an ExitStack
# %% cell: checkpoint_answer
class CheckpointFunction(Function):
    @staticmethod
    def forward(ctx, run_function, preserve_rng_state, *args):
        ctx.run_function = run_function
        ctx.preserve = preserve_rng_state
        ctx.tensor_idx = [i for i, a in enumerate(args) if isinstance(a, torch.Tensor)]
        ctx.args = [None if isinstance(a, torch.Tensor) else a for a in args]
        ctx.save_for_backward(*[args[i] for i in ctx.tensor_idx])
        ctx.gpus = list(range(torch.cuda.device_count())) if torch.cuda.is_initialized() else []
        if preserve_rng_state:
            ctx.cpu_rng = torch.get_rng_state()
            ctx.gpu_rng = [torch.cuda.get_rng_state(d) for d in ctx.gpus]
        kinds = {"cpu"} | {args[i].device.type for i in ctx.tensor_idx}
        ctx.amp = [(k, torch.is_autocast_enabled(k), torch.get_autocast_dtype(k)) for k in sorted(kinds)]
        ctx.amp_cache = torch.is_autocast_cache_enabled()
        with torch.no_grad():
            return run_function(*args)

    @staticmethod
    def backward(ctx, *grad_outputs):
        args = list(ctx.args)
        for i, t in zip(ctx.tensor_idx, ctx.saved_tensors):
            args[i] = t.detach().requires_grad_(t.requires_grad)
        with torch.random.fork_rng(devices=ctx.gpus, enabled=ctx.preserve):
            if ctx.preserve:
                torch.set_rng_state(ctx.cpu_rng)
                for d, s in zip(ctx.gpus, ctx.gpu_rng):
                    torch.cuda.set_rng_state(s, d)
            with contextlib.ExitStack() as stack:
                stack.enter_context(torch.enable_grad())
                for kind, enabled, dtype in ctx.amp:
                    stack.enter_context(torch.autocast(kind, dtype=dtype, enabled=enabled, cache_enabled=ctx.amp_cache))
                outputs = ctx.run_function(*args)
        if isinstance(outputs, torch.Tensor):
            outputs = (outputs,)
        keep = [i for i, o in enumerate(outputs) if isinstance(o, torch.Tensor) and o.requires_grad]
        torch.autograd.backward([outputs[i] for i in keep], [grad_outputs[i] for i in keep])
        grads = [None] * len(args)
        for i in ctx.tensor_idx:
            grads[i] = args[i].grad
        return (None, None, *grads)


def checkpoint(function, *args, preserve_rng_state=True):
    return CheckpointFunction.apply(function, preserve_rng_state, *args)
