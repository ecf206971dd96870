# expect: full
# why: torch.random.get_rng_state / set_rng_state: the caller's CPU and CUDA states saved before the recomputation
#   and put back after it, instead of fork_rng; tensors found with isinstance;
#   torch.autocast objects built in forward from the recorded state, entered and exited by hand in backward
# %% cell: checkpoint_answer
class CheckpointFunction(Function):
    @staticmethod
    def forward(ctx, run_function, preserve_rng_state, *args):
        ctx.fn = run_function
        ctx.preserve = preserve_rng_state
        ctx.cuda = torch.cuda.is_initialized()
        if preserve_rng_state:
            ctx.state = torch.random.get_rng_state()
            ctx.cuda_state = torch.cuda.get_rng_state() if ctx.cuda else None
        ctx.where = [isinstance(a, torch.Tensor) for a in args]
        kinds = sorted({"cpu"} | {a.device.type for a in args if isinstance(a, torch.Tensor)})
        ctx.casts = [torch.autocast(k, dtype=torch.get_autocast_dtype(k), enabled=torch.is_autocast_enabled(k),
                                    cache_enabled=torch.is_autocast_cache_enabled()) for k in kinds]
        ctx.rest = [None if t else a for t, a in zip(ctx.where, args)]
        ctx.save_for_backward(*[a for t, a in zip(ctx.where, args) if t])
        with torch.no_grad():
            out = run_function(*args)
        return out

    @staticmethod
    def backward(ctx, *grads):
        saved = iter(ctx.saved_tensors)
        inputs = [next(saved).detach().requires_grad_(ctx.needs_input_grad[i + 2]) if t else r
                  for i, (t, r) in enumerate(zip(ctx.where, ctx.rest))]
        caller = torch.random.get_rng_state()
        caller_cuda = torch.cuda.get_rng_state() if ctx.cuda else None
        if ctx.preserve:
            torch.random.set_rng_state(ctx.state)
            if ctx.cuda:
                torch.cuda.set_rng_state(ctx.cuda_state)
        try:
            with torch.enable_grad():
                for cast in ctx.casts:
                    cast.__enter__()
                try:
                    out = ctx.fn(*inputs)
                finally:
                    for cast in reversed(ctx.casts):
                        cast.__exit__(None, None, None)
        finally:
            torch.random.set_rng_state(caller)
            if ctx.cuda:
                torch.cuda.set_rng_state(caller_cuda)
        outs = (out,) if torch.is_tensor(out) else tuple(out)
        pairs = [(o, g) for o, g in zip(outs, grads) if o.requires_grad]
        torch.autograd.backward(tuple(o for o, _ in pairs), tuple(g for _, g in pairs))
        return (None, None) + tuple(a.grad if isinstance(a, torch.Tensor) and a.requires_grad else None
                                    for a in inputs)


def checkpoint(function, *args, preserve_rng_state=True):
    return CheckpointFunction.apply(function, preserve_rng_state, *args)
