//! The ops whole networks need besides convolution, on the GPU: residual add, channel
//! concatenation and standalone activation (shaders/elementwise.wgsl), max / average /
//! global average pooling (shaders/pool.wgsl) and channel shuffle (shaders/shuffle.wgsl).
//! Each takes and returns [`GpuTensor`]s, so a chain never leaves the GPU; the `_into`
//! forms write into a tensor the caller made (to reuse buffers, or to poison it in tests).
//! [`crate::ops::cpu`] has the CPU reference of each.

mod elementwise;
mod params;
mod pool;
mod shuffle;

pub use elementwise::{activation, activation_into, add, add_into, concat, concat_into};
pub(crate) use elementwise::{encode_activation, encode_add, encode_concat};
pub(crate) use pool::encode_pool;
pub use pool::{pool2d, pool2d_into};
pub(crate) use shuffle::encode_shuffle;
pub use shuffle::{channel_shuffle, channel_shuffle_into};

use super::dispatch;
use super::pipelines::OpShader;
pub(crate) use super::tensor::check_output;
use super::tensor::check_precision;
use super::{entry, Gpu, GpuTensor};
use crate::error::{Error, Result};

/// Records one dispatch of `shader` over `output`'s elements: binding 0 `a`, 1 `b` (ops with
/// one input bind it twice), 3 `output`, 4 the uniform block `params`. The three tensors
/// share `a`'s precision.
pub(crate) fn encode_op(
    encoder: &mut wgpu::CommandEncoder,
    shader: OpShader,
    params: &[u8],
    a: &GpuTensor,
    b: &GpuTensor,
    output: &GpuTensor,
) -> Result<()> {
    let gpu = output.gpu();
    gpu.check_same("the op's input tensor", a.gpu())?;
    gpu.check_same("the op's input tensor", b.gpu())?;
    let precision = a.precision();
    check_precision("the op's second input tensor", b, precision)?;
    check_precision("the op's output tensor", output, precision)?;
    let elements = output.shape().len()? as u64;
    let grid = dispatch::grid(
        elements.div_ceil(u64::from(shader.workgroup_size())),
        gpu.limits().max_compute_workgroups_per_dimension,
    )?;
    // Ops bind whole tensors; unlike convolutions (src/gpu/split.rs) they are not split
    // past the storage-binding limit.
    for (what, t) in [("op input", a), ("op input", b), ("op output", output)] {
        gpu.check_binding_size(what, t.buffer().size())?;
    }
    let pipeline = gpu.pipelines().ops.get(gpu.dev(), shader, precision)?;
    let device = gpu.device();
    let params_buffer = gpu.buffer_init("op.params", params, wgpu::BufferUsages::UNIFORM)?;
    gpu.scoped("op encoding", || {
        let bind_group = device.create_bind_group(&wgpu::BindGroupDescriptor {
            label: Some(shader.label()),
            layout: &gpu.pipelines().ops.layout,
            entries: &[
                entry(0, a.buffer()),
                entry(1, b.buffer()),
                entry(3, output.buffer()),
                entry(4, &params_buffer),
            ],
        });
        let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor {
            label: Some(shader.label()),
            timestamp_writes: None,
        });
        pass.set_pipeline(&pipeline);
        pass.set_bind_group(0, &bind_group, &[]);
        pass.dispatch_workgroups(grid[0], grid[1], grid[2]);
        gpu.count_dispatch();
    })
}

/// Encodes with `record` and submits, inside an error scope.
pub(crate) fn submit(
    gpu: &Gpu,
    label: &'static str,
    record: impl FnOnce(&mut wgpu::CommandEncoder) -> Result<()>,
) -> Result<()> {
    let mut encoder = gpu.encoder(label)?;
    record(&mut encoder)?;
    gpu.scoped("op dispatch", || {
        gpu.queue().submit([encoder.finish()]);
    })
}

/// A size as the shaders' `u32`.
pub(crate) fn u32_of(what: &'static str, v: usize) -> Result<u32> {
    u32::try_from(v).map_err(|_| Error::Overflow {
        what,
        detail: format!("{v} does not fit the shaders' 32-bit indices"),
    })
}

#[cfg(test)]
mod tests {
    //! Checks the op shaders with naga, no GPU needed: each parses and validates, declares its
    //! uniform block exactly as the host lays it out, binds only slots of `OpPipelines`'
    //! layout with the right access, and uses the host's workgroup size.
    use super::params::FIELDS;
    use crate::gpu::pipelines::OpShader as Shader;

    fn module(shader: Shader) -> naga::Module {
        let storage = crate::gpu::pipelines::Storage::of(crate::Precision::F32);
        crate::gpu::pipelines::tests::parse_as(shader.label(), shader.source(), storage).0
    }

    #[test]
    fn op_shaders_parse_and_validate() {
        for shader in Shader::ALL {
            module(shader);
        }
    }

    #[test]
    fn op_params_blocks_match_the_host_structs() {
        for (shader, (struct_name, fields, size)) in Shader::ALL.into_iter().zip(FIELDS) {
            let module = module(shader);
            let (_, ty) = module
                .types
                .iter()
                .find(|(_, t)| t.name.as_deref() == Some(struct_name))
                .unwrap_or_else(|| panic!("{}: no {struct_name}", shader.label()));
            let naga::TypeInner::Struct { members, span } = &ty.inner else {
                panic!("{}: {struct_name} is not a struct", shader.label());
            };
            let names: Vec<&str> = members.iter().filter_map(|m| m.name.as_deref()).collect();
            assert_eq!(names, fields, "{}", shader.label());
            for (i, m) in members.iter().enumerate() {
                assert_eq!(m.offset as usize, 4 * i, "{}: {:?}", shader.label(), m.name);
                let ty = &module.types[m.ty].inner;
                assert!(
                    matches!(ty, naga::TypeInner::Scalar(s) if s.kind == naga::ScalarKind::Uint && s.width == 4),
                    "{}: {:?} is not u32",
                    shader.label(),
                    m.name
                );
            }
            assert_eq!(*span as usize, size, "{}", shader.label());
            assert_eq!(size % 16, 0, "{}: uniform size", shader.label());
        }
    }

    #[test]
    fn op_shaders_bind_only_the_op_layout() {
        for shader in Shader::ALL {
            let module = module(shader);
            for (_, var) in module.global_variables.iter() {
                let Some(binding) = &var.binding else {
                    continue;
                };
                assert_eq!(binding.group, 0, "{}", shader.label());
                let expected = match binding.binding {
                    0 | 1 => naga::AddressSpace::Storage {
                        access: naga::StorageAccess::LOAD,
                    },
                    3 => naga::AddressSpace::Storage {
                        access: naga::StorageAccess::LOAD | naga::StorageAccess::STORE,
                    },
                    4 => naga::AddressSpace::Uniform,
                    other => panic!("{}: binding {other} is not in the layout", shader.label()),
                };
                assert_eq!(var.space, expected, "{}: {:?}", shader.label(), var.name);
            }
        }
    }

    #[test]
    fn op_workgroup_size_matches_the_host() {
        for shader in Shader::ALL {
            let module = module(shader);
            let entry = module
                .entry_points
                .iter()
                .find(|e| e.name == "main")
                .unwrap_or_else(|| panic!("{}: no main", shader.label()));
            let [x, y, z] = entry.workgroup_size;
            assert_eq!(x * y * z, shader.workgroup_size(), "{}", shader.label());
        }
    }
}
