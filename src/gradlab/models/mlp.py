"""Fully connected network with a hand-written backward pass.

Layer i computes z_i = h_{i-1} @ W_i + b_i and h_i = phi(z_i) on row vectors, with
parameters named as in notebook 004 (``0_weight``, ``0_bias``, ...). An optional
leading restart dimension R trains R independent networks in one batched model.
"""

from types import SimpleNamespace

import torch
from torch import nn

from gradlab.models.activations import EachRun, get_activation
from gradlab.models.init import check_restarts, draw_layer, set_initial_values


def matmul_per_run(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """a @ b one run at a time over the leading run dimension (either side may lack it).

    Each product is the 2-D matmul that run would compute on its own: torch's batched matmul
    sums small products in another order (1 ulp apart in float32), this one rounds alike. Each
    run's operands are copied to tensors of their own: a matrix-vector product sums in an
    order that depends on where its data starts in memory (a run's slice of a stacked tensor
    starts anywhere; a tensor of its own, as its solo run has, on an aligned address)."""
    runs = max(a.shape[0] if a.dim() == 3 else 1, b.shape[0] if b.dim() == 3 else 1)
    left = [x.clone() for x in a.unbind(0)] if a.dim() == 3 else [a] * runs
    right = [y.clone() for y in b.unbind(0)] if b.dim() == 3 else [b] * runs
    return torch.stack([x @ y for x, y in zip(left, right, strict=True)])


class MLP(nn.Module):
    def __init__(
        self,
        sizes: list[int],
        activation: str = "tanh",
        output_activation: str = "identity",
        bias: bool = True,
        init: str = "normal",
        init_values: dict | None = None,
        restarts: int | None = None,
        generator: torch.Generator | None = None,
    ):
        super().__init__()
        sizes = list(sizes)
        if len(sizes) < 2 or any(
            isinstance(n, bool) or not isinstance(n, int) or n < 1 for n in sizes
        ):
            raise ValueError(
                f"sizes: need >= 2 positive integers (inputs ... outputs), got {sizes}"
            )
        self.sizes = sizes
        self.activation = get_activation(activation, "activation")
        self.output_activation = get_activation(output_activation, "output_activation")
        self.bias = bool(bias)
        self.restarts = check_restarts(restarts)

        layers = [[] for _ in range(len(sizes) - 1)]
        for _ in range(self.restarts or 1):  # restart-major order: restart 0 is a solo run's init
            for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:], strict=True)):
                layers[i].append(draw_layer(init, n_in, n_out, generator))
        for i, draws in enumerate(layers):
            w = torch.stack([w for w, _ in draws]) if self.restarts else draws[0][0]
            self.register_parameter(f"{i}_weight", nn.Parameter(w))
            if self.bias:
                b = torch.stack([b for _, b in draws]) if self.restarts else draws[0][1]
                self.register_parameter(f"{i}_bias", nn.Parameter(b))
        set_initial_values(self, init_values)
        self.phis = [self.activation] * (self.num_layers - 1) + [self.output_activation]
        self.cache = SimpleNamespace(hs=None, zs=None)  # what backward needs from forward
        self.matmul = torch.matmul  # matmul_per_run: batched runs that round as solo runs

    def round_as_solo_runs(self, each: bool = True) -> None:
        """Each run's matrix products and activations computed on its own slice (restarts as
        a batched group's runs that equal their solo runs bit for bit); ``each=False``: as
        one tensor again (a single run cut from the group)."""
        plain = [phi.phi if isinstance(phi, EachRun) else phi
                 for phi in (self.activation, self.output_activation)]  # fmt: skip
        self.matmul = matmul_per_run if each else torch.matmul
        self.activation, self.output_activation = (EachRun(p) if each else p for p in plain)
        self.phis = [self.activation] * (self.num_layers - 1) + [self.output_activation]

    @property
    def num_layers(self) -> int:
        return len(self.sizes) - 1

    def weight_of(self, i: int) -> nn.Parameter:
        return getattr(self, f"{i}_weight")

    def bias_of(self, i: int) -> nn.Parameter | None:
        return getattr(self, f"{i}_bias") if self.bias else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        hs, zs = [x], []
        h = x
        for i, phi in enumerate(self.phis):  # parameters read through the module each call,
            w, b = self.weight_of(i), self.bias_of(i)  # so torch.func.functional_call can swap them
            z = self.matmul(h, w) if b is None else self.matmul(h, w) + b.unsqueeze(-2)
            h = phi(z)
            zs.append(z)
            hs.append(h)
        self.cache.hs, self.cache.zs = hs, zs
        return h

    def manual_backward(self, grad_output: torch.Tensor, input_grad: bool = True):
        """Backpropagate dL/dy through the last forward pass; fill .grad, return dL/dx
        (None with ``input_grad=False``, which training uses: it saves one matmul)."""
        hs, zs = self.cache.hs, self.cache.zs
        delta = self.output_activation.backward(grad_output, zs[-1], hs[-1])  # dL/dz_L
        for i in reversed(range(self.num_layers)):
            w, b = self.weight_of(i), self.bias_of(i)
            # dL/dW_i = h_{i-1}^T delta_i (summed over samples)
            w.grad = self.matmul(hs[i].mT, delta)
            if b is not None:
                b.grad = delta.sum(-2)  # dL/db_i = sum_n delta_i
            if i == 0 and not input_grad:
                return None
            grad_h = self.matmul(delta, w.mT)  # dL/dh_{i-1} = delta_i W_i^T
            if i > 0:
                delta = self.activation.backward(grad_h, zs[i - 1], hs[i])  # * phi'(z_{i-1})
        return grad_h

    def hidden(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Outputs of each hidden layer for input x."""
        self.forward(x)
        return self.cache.hs[1:-1]

    def extra_repr(self) -> str:
        r = f", restarts={self.restarts}" if self.restarts else ""
        return (
            f"sizes={self.sizes}, activation={self.activation}, "
            f"output_activation={self.output_activation}, bias={self.bias}{r}"
        )


class LogisticRegression(MLP):
    """Multinomial logistic regression: log_softmax(x @ W + b), named ``0_weight``, ``0_bias``."""

    def __init__(
        self,
        n_inputs: int,
        n_classes: int,
        init: str = "scaled_normal",
        init_values: dict | None = None,
        restarts: int | None = None,
        generator: torch.Generator | None = None,
    ):
        super().__init__(
            [n_inputs, n_classes],
            activation="identity",
            output_activation="log_softmax",
            init=init,
            init_values=init_values,
            restarts=restarts,
            generator=generator,
        )
