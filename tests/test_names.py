"""One meaning per name, one name per meaning: the renamed names, and what the old ones do.

A renamed public name keeps its old name for one release, as a deprecated alias that reads the
new one with a ``DeprecationWarning``. The REPL tools, which ``functional_gpt.tape`` used to
re-export (an import circle), are refused there with an error that names their home.
"""

from __future__ import annotations

import importlib
import warnings

import pytest
from hypothesis import given
from hypothesis import strategies as st
from strategies import blocks

import functional_gpt.tape as T
from functional_gpt import layers as L
from functional_gpt import repl, tape_storage, transforms

OLD_BLOCK_FIELDS = {"member_ids": "own_ids", "common_grads": "own_grads",
                    "common_ids": "shared_ids", "member_grads": "shared_grads"}


def test_every_name_in_the_tapes_all_is_there_and_each_is_defined_or_re_exported():
    defined = {name for name in T.__all__ if getattr(getattr(T, name), "__module__", None)
               == T.__name__}
    for name in T.__all__:
        assert hasattr(T, name), name
    # Everything defined in tape.py is listed before the first re-exported name.
    first_re_export = T.__all__.index("Tape")
    assert defined <= set(T.__all__[:first_re_export])
    assert not {"Tape", "Block", "Run", "NonFiniteError", "backward_as_tuple"} & defined


@given(blocks())
def test_the_blocks_old_field_names_read_the_new_fields_with_a_warning(case):
    _, block, _ = case
    for old, new in OLD_BLOCK_FIELDS.items():
        with pytest.warns(DeprecationWarning, match=f"Block.{old} is now Block.{new}"):
            assert getattr(block, old) is getattr(block, new)
    assert block._fields == tuple(OLD_BLOCK_FIELDS.values())  # the order is the old one


@given(blocks())
def test_a_members_inputs_pair_each_ids_field_with_its_grads_field(case):
    """Member k reads own_ids[k] with own_grads, then shared_ids with shared_grads[k]."""
    tape, block, member_values = case
    tape, ids = T.push_block(tape, "blk", member_values, block)
    for k, i in enumerate(ids):
        node = T.node(tape, i)
        n_own = len(block.own_ids[k])
        assert len(block.own_grads) == n_own and len(block.shared_grads[k]) == len(
            block.shared_ids)
        assert node.inputs == tuple(block.own_ids[k]) + tuple(block.shared_ids)
        assert node.local_grads == tuple(block.own_grads) + tuple(block.shared_grads[k])


def test_stored_node_is_the_deprecated_name_of_entry():
    with pytest.warns(DeprecationWarning, match="tape.StoredNode is now functional_gpt.tape.Entry"):
        assert T.StoredNode is T.Entry  # type: ignore[attr-defined]


# What the tape re-exported once and where each name lives now: the tools for looking in repl,
# the first-order transformations in transforms (repl re-exports them too).
MOVED_OFF_THE_TAPE = {
    **{n: "repl" for n in repl.__all__ if n not in transforms.__all__},
    "value_and_grad": "transforms", "gradient": "transforms",
}


@pytest.mark.parametrize("name, home", sorted(MOVED_OFF_THE_TAPE.items()))
def test_the_tools_off_the_tape_are_where_the_tape_says(name, home):
    with pytest.raises(AttributeError, match=f"tape.{name} is now functional_gpt.{home}.{name}"):
        getattr(T, name)
    assert getattr(importlib.import_module(f"functional_gpt.{home}"), name) is getattr(repl, name)


def test_an_unknown_name_of_the_tape_is_an_ordinary_attribute_error():
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no warning for a name that never was
        with pytest.raises(AttributeError, match="has no attribute 'tabel'"):
            T.tabel  # type: ignore[attr-defined]  # noqa: B018


def test_non_finite_error_is_named_where_it_is_defined():
    """No rewritten __module__: the class says where it lives, and the tape re-exports it."""
    assert T.NonFiniteError is tape_storage.NonFiniteError
    assert T.NonFiniteError.__module__ == "functional_gpt.tape_storage"
    with pytest.raises(T.NonFiniteError, match="var: value inf is not finite"):
        T.var(T.new(), float("inf"))


@given(st.lists(st.floats(-4, 4), min_size=1, max_size=5))
def test_the_vector_ops_are_named_for_the_primitive_they_map(xs):
    """layers.vector_X is T.X over a vector: the ops of its nodes are the primitive's name."""
    tape, ids = T.map_tape(T.new(), xs, T.var)
    for vector_op, primitive, args in [(L.vector_add, "add", (ids, ids)),
                                       (L.vector_relu, "relu", (ids,)),
                                       (L.vector_mul, "mul", (ids, ids[0]))]:
        assert vector_op.__name__ == f"vector_{primitive}"
        out_tape, out = vector_op(tape, *args)
        assert {T.node(out_tape, i).op for i in out} == {primitive}
