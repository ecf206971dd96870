# expect: full
# why: a correct variant without fork_rng: saves the caller's states in backward and restores them by hand;
#   the autocast state with the lesson's autocast_state / autocast_as tools
# %% cell: checkpoint_answer
class CheckpointFunction(Function):
    @staticmethod
    def forward(ctx, run_function, preserve_rng_state, *args):
        ctx.fn = run_function
        ctx.keep_rng = preserve_rng_state
        ctx.cuda = torch.cuda.is_initialized()
        if preserve_rng_state:
            ctx.rng = (torch.get_rng_state(), torch.cuda.get_rng_state() if ctx.cuda else None)
        ctx.autocast = autocast_state({"cpu"} | {a.device.type for a in args if isinstance(a, torch.Tensor)})
        is_tensor = [isinstance(a, torch.Tensor) for a in args]
        ctx.is_tensor = is_tensor
        ctx.others = [None if t else a for t, a in zip(is_tensor, args)]
        ctx.save_for_backward(*[a for t, a in zip(is_tensor, args) if t])
        with torch.no_grad():
            out = run_function(*args)
        return out

    @staticmethod
    def backward(ctx, *grads):
        saved = iter(ctx.saved_tensors)
        inputs = []
        for t, other in zip(ctx.is_tensor, ctx.others):
            if t:
                s = next(saved)
                inputs.append(s.detach().requires_grad_(s.requires_grad))
            else:
                inputs.append(other)
        caller = (torch.get_rng_state(), torch.cuda.get_rng_state() if ctx.cuda else None)
        try:
            if ctx.keep_rng:
                torch.set_rng_state(ctx.rng[0])
                if ctx.cuda:
                    torch.cuda.set_rng_state(ctx.rng[1])
            with torch.enable_grad(), autocast_as(ctx.autocast):
                out = ctx.fn(*inputs)
        finally:
            torch.set_rng_state(caller[0])
            if ctx.cuda:
                torch.cuda.set_rng_state(caller[1])
        outs = out if isinstance(out, tuple) else (out,)
        used = [(o, g) for o, g in zip(outs, grads) if o.requires_grad]
        if used:
            torch.autograd.backward(*zip(*used))
        return (None, None, *[i.grad if isinstance(i, torch.Tensor) else None for i in inputs])


def checkpoint(function, *args, preserve_rng_state=True):
    return CheckpointFunction.apply(function, preserve_rng_state, *args)
