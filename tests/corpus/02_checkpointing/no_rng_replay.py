# expect: fails test_rng_replay test_rng_caller
# why: records no random state: the recomputation draws a new dropout mask and consumes the caller's random numbers
# %% cell: checkpoint_answer
class CheckpointFunction(Function):
    @staticmethod
    def forward(ctx, run_function, preserve_rng_state, *args):
        ctx.run_function = run_function
        ctx.preserve_rng_state = preserve_rng_state
        ctx.devices = [torch.cuda.current_device()] if torch.cuda.is_initialized() else []
        # (random state not recorded)
        ctx.args = [None if torch.is_tensor(a) else a for a in args]
        ctx.positions = [i for i, a in enumerate(args) if torch.is_tensor(a)]
        ctx.save_for_backward(*(a for a in args if torch.is_tensor(a)))
        with torch.no_grad():
            return run_function(*args)

    @staticmethod
    def backward(ctx, *grad_outputs):
        args = list(ctx.args)
        for i, saved in zip(ctx.positions, ctx.saved_tensors):
            args[i] = saved.detach().requires_grad_(saved.requires_grad)
        with torch.enable_grad():
            outputs = ctx.run_function(*args)
        if torch.is_tensor(outputs):
            outputs = (outputs,)
        pairs = [(o, g) for o, g in zip(outputs, grad_outputs) if o.requires_grad]
        torch.autograd.backward([o for o, _ in pairs], [g for _, g in pairs])
        return (None, None) + tuple(a.grad if torch.is_tensor(a) else None for a in args)


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
