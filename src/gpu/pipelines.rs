//! Shader sources, the bind-group layout they share, and the compute-pipeline cache.

use std::collections::HashMap;
use std::sync::Mutex;

use super::ops::OpPipelines;
use crate::error::Result;

/// One WGSL file per kernel family, embedded at compile time after the parts it shares with
/// the others (see [`Shader::source`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Shader {
    Depthwise,
    Pointwise,
    Grouped,
}

impl Shader {
    /// All shaders, for tests that validate each file.
    #[cfg(test)]
    pub(crate) const ALL: [Shader; 3] = [Shader::Depthwise, Shader::Pointwise, Shader::Grouped];

    /// The WGSL source: the kernel's file after the parts it shares with other kernels
    /// (WGSL has no includes): `conv_common.wgsl` (the parameters struct and the epilogue)
    /// for all three, `channel_tile.wgsl` (the register tile) for pointwise and grouped.
    pub(crate) const fn source(self) -> &'static str {
        match self {
            Shader::Depthwise => concat!(
                include_str!("../../shaders/conv_common.wgsl"),
                include_str!("../../shaders/depthwise.wgsl")
            ),
            Shader::Pointwise => concat!(
                include_str!("../../shaders/conv_common.wgsl"),
                include_str!("../../shaders/channel_tile.wgsl"),
                include_str!("../../shaders/pointwise.wgsl")
            ),
            Shader::Grouped => concat!(
                include_str!("../../shaders/conv_common.wgsl"),
                include_str!("../../shaders/channel_tile.wgsl"),
                include_str!("../../shaders/grouped.wgsl")
            ),
        }
    }

    /// Label for wgpu objects and error messages.
    pub(crate) const fn label(self) -> &'static str {
        match self {
            Shader::Depthwise => "depthwise",
            Shader::Pointwise => "pointwise",
            Shader::Grouped => "grouped",
        }
    }

    /// Invocations per workgroup; equals `WORKGROUP_SIZE` in the WGSL file (tested).
    /// Pointwise workgroups are one 32-wide SIMD group: with two pixels per invocation a
    /// 7×7 output still spreads over two workgroups, so over two CPU threads on a software
    /// adapter.
    pub(crate) const fn workgroup_size(self) -> u32 {
        match self {
            Shader::Pointwise | Shader::Grouped => 32,
            _ => 64,
        }
    }
}

/// Floats in one uniform weight window: `array<vec4<f32>, 4096>` in the shaders, 64 KiB,
/// the smallest `max_uniform_buffer_binding_size` WebGPU allows (tested against the WGSL).
pub(crate) const WEIGHT_WINDOW_FLOATS: usize = 16_384;

/// Override constants of one pipeline: `(name, value)` pairs, all small integers.
pub(crate) type Constants = Vec<(&'static str, u32)>;

/// A pipeline is a shader specialised by its override constants.
type PipelineKey = (Shader, Constants);

/// The shared bind-group layout and the lazily built pipelines.
pub(crate) struct Pipelines {
    pub(crate) conv_layout: wgpu::BindGroupLayout,
    conv_pipeline_layout: wgpu::PipelineLayout,
    cache: Mutex<HashMap<PipelineKey, wgpu::ComputePipeline>>,
    /// The non-convolution op shaders, with their own layout (src/gpu/ops).
    pub(crate) ops: OpPipelines,
}

impl Pipelines {
    pub(crate) fn new(device: &wgpu::Device) -> Self {
        let storage = |binding: u32, read_only: bool| wgpu::BindGroupLayoutEntry {
            binding,
            visibility: wgpu::ShaderStages::COMPUTE,
            ty: wgpu::BindingType::Buffer {
                ty: wgpu::BufferBindingType::Storage { read_only },
                has_dynamic_offset: false,
                min_binding_size: None,
            },
            count: None,
        };
        let uniform = |binding: u32| wgpu::BindGroupLayoutEntry {
            binding,
            visibility: wgpu::ShaderStages::COMPUTE,
            ty: wgpu::BindingType::Buffer {
                ty: wgpu::BufferBindingType::Uniform,
                has_dynamic_offset: false,
                min_binding_size: None,
            },
            count: None,
        };
        // 0 input, 1 weight window (uniform), 2 bias, 3 output, 4 params.
        let conv_layout = device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
            label: Some("conv.bind_group_layout"),
            entries: &[
                storage(0, true),
                uniform(1),
                storage(2, true),
                storage(3, false),
                uniform(4),
            ],
        });
        let conv_pipeline_layout = device.create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
            label: Some("conv.pipeline_layout"),
            bind_group_layouts: &[Some(&conv_layout)],
            immediate_size: 0,
        });
        Self {
            conv_layout,
            conv_pipeline_layout,
            cache: Mutex::new(HashMap::new()),
            ops: OpPipelines::new(device),
        }
    }

    /// The pipeline for `shader` specialised with `constants`, compiled on first use and
    /// cached. Compilation errors come back as [`crate::Error::Gpu`].
    pub(crate) fn get(
        &self,
        gpu: &super::Gpu,
        shader: Shader,
        constants: &Constants,
    ) -> Result<wgpu::ComputePipeline> {
        let key = (shader, constants.clone());
        let mut cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(p) = cache.get(&key) {
            return Ok(p.clone());
        }
        let overrides: Vec<(&str, f64)> = constants
            .iter()
            .map(|&(name, value)| (name, f64::from(value)))
            .collect();
        let device = gpu.device();
        let pipeline = gpu.scoped("shader compilation", || {
            let module = device.create_shader_module(wgpu::ShaderModuleDescriptor {
                label: Some(shader.label()),
                source: wgpu::ShaderSource::Wgsl(shader.source().into()),
            });
            device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
                label: Some(shader.label()),
                layout: Some(&self.conv_pipeline_layout),
                module: &module,
                entry_point: Some("main"),
                compilation_options: wgpu::PipelineCompilationOptions {
                    constants: &overrides,
                    ..Default::default()
                },
                cache: None,
            })
        })?;
        cache.insert(key, pipeline.clone());
        Ok(pipeline)
    }
}

#[cfg(test)]
mod tests {
    //! Checks every shader with naga, no GPU needed: it parses, validates, declares the
    //! `ConvParams` block exactly as the host lays it out, and uses the host's workgroup size.
    use super::Shader;
    use crate::gpu::params::{ConvParams, CONV_PARAMS_FIELDS};

    fn module(shader: Shader) -> (naga::Module, naga::valid::ModuleInfo) {
        let module = naga::front::wgsl::parse_str(shader.source()).unwrap_or_else(|e| {
            panic!("{}: {}", shader.label(), e.emit_to_string(shader.source()))
        });
        let info = naga::valid::Validator::new(
            naga::valid::ValidationFlags::all(),
            naga::valid::Capabilities::empty(),
        )
        .validate(&module)
        .unwrap_or_else(|e| panic!("{}: {e:?}", shader.label()));
        (module, info)
    }

    #[test]
    fn every_shader_parses_and_validates() {
        for shader in Shader::ALL {
            module(shader);
        }
    }

    #[test]
    fn conv_params_block_matches_the_host_struct() {
        for shader in Shader::ALL {
            let (module, _) = module(shader);
            let (_, ty) = module
                .types
                .iter()
                .find(|(_, t)| t.name.as_deref() == Some("ConvParams"))
                .unwrap_or_else(|| panic!("{}: no ConvParams struct", shader.label()));
            let naga::TypeInner::Struct { members, span } = &ty.inner else {
                panic!("{}: ConvParams is not a struct", shader.label());
            };
            let names: Vec<&str> = members.iter().filter_map(|m| m.name.as_deref()).collect();
            assert_eq!(names, CONV_PARAMS_FIELDS, "{}", shader.label());
            for (i, m) in members.iter().enumerate() {
                assert_eq!(m.offset as usize, 4 * i, "{}: {:?}", shader.label(), m.name);
            }
            assert_eq!(
                *span as usize,
                std::mem::size_of::<ConvParams>(),
                "{}",
                shader.label()
            );
        }
    }

    #[test]
    fn weight_window_matches_the_host() {
        for shader in Shader::ALL {
            let (module, _) = module(shader);
            let (_, var) = module
                .global_variables
                .iter()
                .find(|(_, v)| v.name.as_deref() == Some("weights"))
                .unwrap_or_else(|| panic!("{}: no weights", shader.label()));
            assert_eq!(var.space, naga::AddressSpace::Uniform, "{}", shader.label());
            let size = module.types[var.ty].inner.size(module.to_ctx());
            assert_eq!(
                size as usize,
                4 * super::WEIGHT_WINDOW_FLOATS,
                "{}",
                shader.label()
            );
        }
    }

    #[test]
    fn workgroup_size_matches_the_host() {
        for shader in Shader::ALL {
            let (module, _) = module(shader);
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
