# expect: full
# why: a correct variant without fork_rng: saves the caller's states in backward and restores them by hand
# %% cell: checkpoint_answer
class CheckpointFunction(Function):
    @staticmethod
    def forward(ctx, run_function, preserve_rng_state, *args):
        ctx.fn = run_function
        ctx.keep_rng = preserve_rng_state
        ctx.cuda = torch.cuda.is_initialized()
        if preserve_rng_state:
            ctx.rng = (torch.get_rng_state(), torch.cuda.get_rng_state() if ctx.cuda else None)
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
            with torch.enable_grad():
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


# %% cell: hooks_answer
def hooks_checkpoint(function, *args, preserve_rng_state=True):
    """Non-reentrant checkpoint: function(*args) with grad, its saved activations recomputed in backward.

    Run function(*args) once, with grad enabled as usual, under torch.autograd.graph.saved_tensors_hooks
    whose pack keeps NOTHING of a saved tensor but its position (0, 1, 2, ... in the order it is saved),
    and return the output. The first unpack (in backward) recomputes function(*args) ONCE, under
    torch.enable_grad(), collecting in order (detached) the tensors the recomputation saves, with
    saved-tensor hooks of its own; every unpack(position) returns the recomputed tensor at that position.
    If preserve_rng_state, record the CPU random state (and the CUDA one when CUDA is initialized) before
    the forward and replay it for the recomputation inside torch.random.fork_rng, so dropout draws the
    same masks and the caller's random stream is left as it was.
    The grader checks: values and gradients (inputs and parameters, dropout included), the caller's random
    stream, no activation alive after the forward and none (recomputed ones included) after backward, one
    recomputation, torch.autograd.grad (no .grad written), inputs that do not require grad (parameters
    still get gradients) and second derivatives.
    """
    devices = [torch.cuda.current_device()] if torch.cuda.is_initialized() else []
    if preserve_rng_state:
        cpu_state = torch.get_rng_state()
        cuda_states = [torch.cuda.get_rng_state(d) for d in devices]
    recomputed = []  # the tensors the recomputation saves, in the order the forward saved them
    packed = [0]     # how many tensors the forward has saved

    def collect(tensor):  # the recomputation's pack: detached, nothing points back at its graph
        recomputed.append(tensor.detach())

    def pack(tensor):
        packed[0] += 1
        return packed[0] - 1  # a position, not the tensor: the activation can be freed

    def unpack(position):
        if not recomputed:  # the first unpack recomputes the whole function, once
            with torch.random.fork_rng(devices=devices, enabled=preserve_rng_state):
                if preserve_rng_state:
                    torch.set_rng_state(cpu_state)
                    for device, state in zip(devices, cuda_states, strict=True):
                        torch.cuda.set_rng_state(state, device)
                with torch.enable_grad(), torch.autograd.graph.saved_tensors_hooks(collect, lambda _: None):
                    function(*args)
        return recomputed[position]

    with torch.autograd.graph.saved_tensors_hooks(pack, unpack):
        return function(*args)
