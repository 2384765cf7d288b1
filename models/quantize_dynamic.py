#!/usr/bin/python3
"""Quantize the weights of an ONNX model to int8 in the dynamic form.

Every MatMul (and Gemm, rewritten as a MatMul) whose second input is a
constant float matrix becomes the subgraph that ONNX Runtime's dynamic
quantizer produces:

    x -> DynamicQuantizeLinear -> (x_q uint8, x_scale, x_zero_point)
    MatMulInteger(x_q, w_q int8, x_zero_point, w_zero_point) -> int32
    Cast to float -> Mul by (x_scale * w_scale) [-> Add bias, for Gemm]

Weights are symmetric int8 with one scale per output column (zero points
0), or one scale for the whole matrix with --per-tensor. Activations that
feed several MatMuls are quantized once. A Gather from a constant float
table (the token embedding) becomes a Gather from an int8 table followed by
DequantizeLinear with one scale. Convolutions stay float because ONNX
Runtime Web has no ConvInteger kernel.

Usage: quantize_dynamic.py IN.onnx OUT.onnx [--per-tensor] [--float-gather]
"""

import argparse
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

# Symmetric int8 uses -INT8_MAX..INT8_MAX so that the range is the same on
# both sides. Gather tables use the full 7 bits of magnitude.
INT8_MAX = 127

# MatMulInteger weights keep 6 bits of magnitude (ONNX Runtime's
# reduce_range). x86 kernels without AVX-VNNI multiply uint8 by int8 with
# vpmaddubsw, which saturates at 16 bits when two products of 255 * 127 are
# added; onnxruntime-node 1.30 on an AVX2 CPU then drifts to cosine 0.96 from
# fp32 on the text tower, while 63 keeps every runtime within 0.9999.
MATMUL_INT8_MAX = 63

# Gather tables with fewer values than this are left in float: a position
# table gains nothing from int8 and would lose precision.
MIN_GATHER_TABLE_SIZE = 65536


def symmetric_scale(max_abs, limit=INT8_MAX):
    """Return the scale mapping max_abs to limit, 1 where max_abs is 0."""
    max_abs = np.asarray(max_abs, dtype=np.float32)
    return np.where(max_abs > 0, max_abs / limit, 1.0).astype(np.float32)


def quantize_weight(weight, per_column):
    """Return (int8 weight [K, N], float32 scale [N] or [], int8 zero point)."""
    if per_column:
        scale = symmetric_scale(np.abs(weight).max(axis=0), MATMUL_INT8_MAX)
    else:
        scale = symmetric_scale(np.abs(weight).max(), MATMUL_INT8_MAX)
    quantized = np.clip(np.rint(weight / scale), -MATMUL_INT8_MAX, MATMUL_INT8_MAX)
    zero_point = np.zeros(scale.shape, dtype=np.int8)
    return quantized.astype(np.int8), scale, zero_point


class Quantizer:
    """Rewrite one graph in place. New tensor names are derived from node names."""

    def __init__(self, model, per_column, quantize_gather):
        self.graph = model.graph
        self.per_column = per_column
        self.quantize_gather = quantize_gather
        self.initializers = {t.name: t for t in self.graph.initializer}
        self.quantized_inputs = {}   # activation name -> (x_q, scale, zero point)
        self.new_initializers = []
        self.counts = {'MatMul': 0, 'Gemm': 0, 'Gather': 0}

    def constant(self, name):
        tensor = self.initializers.get(name)
        if tensor is None or tensor.data_type != TensorProto.FLOAT:
            return None
        return numpy_helper.to_array(tensor)

    def add_initializer(self, array, name):
        self.new_initializers.append(numpy_helper.from_array(array, name))
        return name

    def quantize_activation(self, name, nodes):
        """Return the DynamicQuantizeLinear outputs for activation `name`."""
        if name not in self.quantized_inputs:
            base = name.replace('/', '_').strip('_') + '_dq'
            outputs = [f'{base}_quantized', f'{base}_scale', f'{base}_zero_point']
            nodes.append(helper.make_node('DynamicQuantizeLinear', [name],
                                          outputs, name=f'{base}_node'))
            self.quantized_inputs[name] = outputs
        return self.quantized_inputs[name]

    def integer_matmul(self, node, activation, weight, output, nodes):
        """Append the MatMulInteger subgraph computing activation @ weight."""
        base = (node.name or output).replace('/', '_').strip('_')
        x_q, x_scale, x_zero_point = self.quantize_activation(activation, nodes)
        w_q, w_scale, w_zero_point = quantize_weight(weight, self.per_column)
        inputs = [x_q,
                  self.add_initializer(w_q, f'{base}_weight_quantized'),
                  x_zero_point,
                  self.add_initializer(w_zero_point, f'{base}_weight_zero_point')]
        scale_name = self.add_initializer(w_scale, f'{base}_weight_scale')
        nodes += [
            helper.make_node('MatMulInteger', inputs, [f'{base}_int32'],
                             name=f'{base}_matmul_integer'),
            helper.make_node('Cast', [f'{base}_int32'], [f'{base}_float'],
                             to=TensorProto.FLOAT, name=f'{base}_cast'),
            helper.make_node('Mul', [x_scale, scale_name], [f'{base}_scale'],
                             name=f'{base}_scale_mul'),
            helper.make_node('Mul', [f'{base}_float', f'{base}_scale'],
                             [output], name=f'{base}_output_mul'),
        ]

    def rewrite_matmul(self, node, nodes):
        weight = self.constant(node.input[1])
        if weight is None or weight.ndim != 2:
            return False
        self.integer_matmul(node, node.input[0], weight, node.output[0], nodes)
        self.counts['MatMul'] += 1
        return True

    def rewrite_gemm(self, node, nodes):
        attributes = {a.name: helper.get_attribute_value(a) for a in node.attribute}
        weight = self.constant(node.input[1])
        if (weight is None or attributes.get('transA', 0)
                or attributes.get('alpha', 1.0) != 1.0
                or attributes.get('beta', 1.0) != 1.0):
            return False
        if attributes.get('transB', 0):
            weight = weight.T
        has_bias = len(node.input) > 2 and node.input[2]
        product = node.output[0] + '_product' if has_bias else node.output[0]
        self.integer_matmul(node, node.input[0], np.ascontiguousarray(weight),
                            product, nodes)
        if has_bias:
            nodes.append(helper.make_node('Add', [product, node.input[2]],
                                          [node.output[0]],
                                          name=f'{node.name}_bias_add'))
        self.counts['Gemm'] += 1
        return True

    def rewrite_gather(self, node, nodes):
        table = self.constant(node.input[0])
        if (not self.quantize_gather or table is None
                or table.size < MIN_GATHER_TABLE_SIZE):
            return False
        base = (node.name or node.output[0]).replace('/', '_').strip('_')
        scale = symmetric_scale(np.abs(table).max())
        quantized = np.clip(np.rint(table / scale), -INT8_MAX, INT8_MAX)
        table_name = self.add_initializer(quantized.astype(np.int8),
                                          f'{base}_table_quantized')
        scale_name = self.add_initializer(scale, f'{base}_table_scale')
        zero_name = self.add_initializer(np.zeros((), dtype=np.int8),
                                         f'{base}_table_zero_point')
        attributes = {a.name: helper.get_attribute_value(a) for a in node.attribute}
        nodes += [
            helper.make_node('Gather', [table_name, node.input[1]],
                             [f'{base}_int8'], name=f'{base}_gather_int8',
                             axis=attributes.get('axis', 0)),
            helper.make_node('DequantizeLinear',
                             [f'{base}_int8', scale_name, zero_name],
                             [node.output[0]], name=f'{base}_dequantize'),
        ]
        self.counts['Gather'] += 1
        return True

    def run(self):
        rewriters = {'MatMul': self.rewrite_matmul, 'Gemm': self.rewrite_gemm,
                     'Gather': self.rewrite_gather}
        nodes = []
        for node in self.graph.node:
            rewrite = rewriters.get(node.op_type)
            if rewrite is None or not rewrite(node, nodes):
                nodes.append(node)
        del self.graph.node[:]
        self.graph.node.extend(nodes)

        # Drop the float weights that no node reads any more.
        used = {name for node in self.graph.node for name in node.input}
        used |= {output.name for output in self.graph.output}
        kept = [t for t in self.graph.initializer if t.name in used]
        del self.graph.initializer[:]
        self.graph.initializer.extend(kept + self.new_initializers)
        return self.counts


def quantize_file(in_path, out_path, per_column=True, quantize_gather=True):
    """Quantize `in_path` into `out_path`; return the count of rewritten nodes by type."""
    model = onnx.load(in_path)
    counts = Quantizer(model, per_column, quantize_gather).run()
    onnx.checker.check_model(model, full_check=True)
    onnx.save(model, out_path)
    return counts


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('input', help='float ONNX model')
    parser.add_argument('output', help='path of the quantized model')
    parser.add_argument('--per-tensor', action='store_true',
                        help='one weight scale per matrix instead of per column')
    parser.add_argument('--float-gather', action='store_true',
                        help='keep Gather tables (token embeddings) in float')
    args = parser.parse_args()
    counts = quantize_file(args.input, args.output,
                           per_column=not args.per_tensor,
                           quantize_gather=not args.float_gather)
    print(f'{args.output}: quantized ' +
          ', '.join(f'{count} {op}' for op, count in counts.items()))


if __name__ == '__main__':
    sys.exit(main())
