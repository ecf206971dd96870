# expect: full
# why: a correct variant: fork_rng over the CUDA devices of the inputs, tensors located by index, grads via a dict,
#   the autocast state as (enabled, dtype) per device type, replayed with an ExitStack
# %% cell: checkpoint_answer
class CheckpointFunction(Function):
    @staticmethod
    def forward(ctx, run_function, preserve_rng_state, *args):
        ctx.run_function = run_function
        ctx.preserve = preserve_rng_state
        ctx.n = len(args)
        ctx.where = {i for i, a in enumerate(args) if torch.is_tensor(a)}
        ctx.plain = {i: a for i, a in enumerate(args) if i not in ctx.where}
        ctx.devices = sorted({a.get_device() for a in args if torch.is_tensor(a) and a.is_cuda})
        if preserve_rng_state:
            ctx.cpu = torch.random.get_rng_state()
            ctx.gpu = [torch.cuda.get_rng_state(d) for d in ctx.devices]
        ctx.amp = {t: (torch.is_autocast_enabled(t), torch.get_autocast_dtype(t))
                   for t in {"cpu", *(a.device.type for a in args if torch.is_tensor(a))}}
        ctx.amp_cache = torch.is_autocast_cache_enabled()
        ctx.save_for_backward(*[args[i] for i in sorted(ctx.where)])
        with torch.no_grad():
            return run_function(*args)

    @staticmethod
    def backward(ctx, *grad_outputs):
        tensors = dict(zip(sorted(ctx.where), ctx.saved_tensors))
        args = [tensors[i].detach().requires_grad_(tensors[i].requires_grad) if i in tensors else ctx.plain[i]
                for i in range(ctx.n)]
        with torch.random.fork_rng(devices=ctx.devices):
            if ctx.preserve:
                torch.random.set_rng_state(ctx.cpu)
                for d, s in zip(ctx.devices, ctx.gpu):
                    torch.cuda.set_rng_state(s, d)
            with contextlib.ExitStack() as stack:
                for device_type, (enabled, dtype) in ctx.amp.items():
                    stack.enter_context(torch.autocast(device_type, dtype=dtype, enabled=enabled,
                                                       cache_enabled=ctx.amp_cache))
                with torch.enable_grad():
                    outputs = ctx.run_function(*args)
        if not isinstance(outputs, tuple):
            outputs = (outputs,)
        live = [i for i, o in enumerate(outputs) if torch.is_tensor(o) and o.requires_grad]
        torch.autograd.backward([outputs[i] for i in live], [grad_outputs[i] for i in live])
        grads = [args[i].grad if i in tensors else None for i in range(ctx.n)]
        return (None, None) + tuple(grads)


def checkpoint(function, *args, preserve_rng_state=True):
    return CheckpointFunction.apply(function, preserve_rng_state, *args)
