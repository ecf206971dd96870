# expect: fails test_gradients test_rng_replay test_autocast test_counted_once
# why: uses torch.autograd.grad on the inputs only: the parameters used inside the function get no gradient
# selfcheck: checkpoint_selfcheck fails "no gradient reached"
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
        ctx.autocast = autocast_state({"cpu"} | {a.device.type for a in args if torch.is_tensor(a)})
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
        with torch.random.fork_rng(devices=ctx.devices, enabled=ctx.preserve_rng_state):
            if ctx.preserve_rng_state:
                torch.set_rng_state(ctx.cpu_state)
                for device, state in zip(ctx.devices, ctx.cuda_states):
                    torch.cuda.set_rng_state(state, device)
            with torch.enable_grad(), autocast_as(ctx.autocast):
                outputs = ctx.run_function(*args)
        if torch.is_tensor(outputs):
            outputs = (outputs,)
        pairs = [(o, g) for o, g in zip(outputs, grad_outputs) if o.requires_grad]
        wanted = [a for a in args if torch.is_tensor(a) and a.requires_grad]
        found = torch.autograd.grad([o for o, _ in pairs], wanted, [g for _, g in pairs], allow_unused=True)
        grads = dict(zip(map(id, wanted), found))
        return (None, None) + tuple(grads.get(id(a)) for a in args)


def checkpoint(function, *args, preserve_rng_state=True):
    return CheckpointFunction.apply(function, preserve_rng_state, *args)
