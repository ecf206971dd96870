# expect: full
# why: the model answer with a scratch comparison against torch's checkpoint at the end of the cell (run when
#   the cell runs, not inside any graded test): comparing is fine, only calling the built-in from the answer
#   is delegation.
# %% cell: checkpoint_answer
class CheckpointFunction(Function):

    @staticmethod
    def forward(ctx, run_function, preserve_rng_state, *args):
        ctx.run_function, ctx.preserve_rng_state = run_function, preserve_rng_state
        ctx.devices = [torch.cuda.current_device()] if torch.cuda.is_initialized() else []
        # Non-tensors stay on ctx; tensors go through save_for_backward (version-checked), None in the others' places.
        ctx.others = [None if torch.is_tensor(a) else a for a in args]
        ctx.save_for_backward(*(a if torch.is_tensor(a) else None for a in args))
        ctx.random_state = random_state(ctx.devices) if preserve_rng_state else None
        ctx.autocast = autocast_state({"cpu"} | {a.device.type for a in args if torch.is_tensor(a)})
        with torch.no_grad():
            return run_function(*args)

    @staticmethod
    def backward(ctx, *grad_outputs):
        args = [other if saved is None else saved.detach().requires_grad_(saved.requires_grad)
                for other, saved in zip(ctx.others, ctx.saved_tensors, strict=True)]
        # fork_rng: whatever happens to the generators inside is undone on exit.
        with torch.random.fork_rng(devices=ctx.devices, enabled=ctx.preserve_rng_state):
            if ctx.preserve_rng_state:
                set_random_state(ctx.random_state, ctx.devices)
            with torch.enable_grad(), autocast_as(ctx.autocast):
                outputs = ctx.run_function(*args)
        outputs = (outputs,) if torch.is_tensor(outputs) else outputs
        pairs = [(o, g) for o, g in zip(outputs, grad_outputs, strict=True) if torch.is_tensor(o) and o.requires_grad]
        torch.autograd.backward([o for o, _ in pairs], [g for _, g in pairs])
        return (None, None) + tuple(a.grad if torch.is_tensor(a) else None for a in args)


def checkpoint(function, *args, preserve_rng_state=True):
    """Checkpointed function(*args): same value and gradients, activations recomputed in backward."""
    return CheckpointFunction.apply(function, preserve_rng_state, *args)


# scratch: compare with torch's checkpoint (not part of the answer)
scratch_layers = seeded_mlp(2, 8, key=5)
scratch_x = seeded_randn(3, 8, key=6).requires_grad_(True)
mine = torch.autograd.grad(checkpoint(mlp_forward, scratch_layers, scratch_x).sum(), scratch_x)[0]
torchs = torch.autograd.grad(torch_checkpoint(mlp_forward, scratch_layers, scratch_x, use_reentrant=False).sum(),
                             scratch_x)[0]
print((mine - torchs).abs().max())
