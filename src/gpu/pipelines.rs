//! Shader sources, the bind-group layout they share, and the compute-pipeline cache.

use std::collections::HashMap;
use std::sync::Mutex;

use super::scoped::ScopedDevice;
use crate::error::Result;
use crate::precision::Precision;
use crate::spec::Residual;

/// A kernel's WGSL source, assembled at compile time (WGSL has no includes): `shared.wgsl`,
/// the one place for the functions every kernel shares (the activation, the residual add,
/// the padded-tap read, the geometry overrides, the invocation numbering), then the named
/// files of `shaders/` in order: the kernel family's fragment, if any, the kernel's own
/// file, and `skip.wgsl` or `no_skip.wgsl` (whether it binds a skip tensor, [`skip_source`]).
macro_rules! wgsl {
    ($($file:literal),+) => {
        concat!(
            include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/shaders/shared.wgsl")),
            $(include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/shaders/", $file)),)+
        )
    };
}

/// The element types of a pipeline's tensor bindings: `Elem` for its inputs and weights,
/// `OutElem` for its output, WGSL aliases the host puts first in the source ([`Self::source`]),
/// so that each kernel family keeps one WGSL file for both precisions. Every load widens to
/// f32 and every store rounds from f32 (all arithmetic is f32). They differ only for the two
/// passes of a split tiled product, whose partial sums stay f32 in between.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct Storage {
    pub(crate) input: Precision,
    pub(crate) output: Precision,
}

impl Storage {
    /// Inputs, weights and output all in `precision`.
    pub(crate) const fn of(precision: Precision) -> Self {
        Self {
            input: precision,
            output: precision,
        }
    }

    /// `body` (a [`wgsl!`] source) after the aliases, with `enable f16;` first when either
    /// is f16 (WGSL wants it before any declaration).
    pub(crate) fn source(self, body: &str) -> String {
        let enable = if self.input == Precision::F16 || self.output == Precision::F16 {
            "enable f16;\n"
        } else {
            ""
        };
        format!(
            "{enable}alias Elem = {};\nalias OutElem = {};\n{body}",
            self.input.name(),
            self.output.name()
        )
    }
}

/// A source with and without the skip binding of the residual add: `wgsl!` of the files,
/// then `skip.wgsl` or `no_skip.wgsl`.
macro_rules! skip_source {
    ($skip:expr; $($file:literal),+) => {
        if $skip {
            wgsl!($($file),+, "skip.wgsl")
        } else {
            wgsl!($($file),+, "no_skip.wgsl")
        }
    };
}

/// The binding of the skip tensor (`skip_data` in skip.wgsl), past every other binding of
/// every kernel family.
pub(crate) const SKIP_BINDING: u32 = 7;

/// Invocations per workgroup of the tiled kernels (`WORKGROUP_SIZE` in gemm_tile.wgsl,
/// tested); devices that allow fewer do not get them.
pub(crate) const TILED_WORKGROUP_SIZE: u32 = 64;

/// One WGSL file per kernel family, embedded at compile time after the parts it shares with
/// the others (see [`Shader::source`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Shader {
    Depthwise,
    Pointwise,
    Grouped,
}

impl Shader {
    /// The convolution shaders, which share `ConvParams` and the weight window; for tests
    /// that check each file.
    #[cfg(test)]
    pub(crate) const CONV: [Shader; 3] = [Shader::Depthwise, Shader::Pointwise, Shader::Grouped];

    /// The WGSL source ([`wgsl!`]): `conv_common.wgsl` (the parameters, the bindings, the
    /// epilogue) for all three, `channel_tile.wgsl` (the register tile) for pointwise and
    /// grouped, then the kernel's file, with the skip binding or without ([`skip_source`]).
    pub(crate) const fn source(self, skip: bool) -> &'static str {
        match self {
            Shader::Depthwise => skip_source!(skip; "conv_common.wgsl", "depthwise.wgsl"),
            Shader::Pointwise => {
                skip_source!(skip; "conv_common.wgsl", "channel_tile.wgsl", "pointwise.wgsl")
            }
            Shader::Grouped => {
                skip_source!(skip; "conv_common.wgsl", "channel_tile.wgsl", "grouped.wgsl")
            }
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

    /// Invocations per workgroup, `WORKGROUP_SIZE` in the WGSL file (tested): a constant of
    /// the depthwise kernel, the default of an override in the pointwise and grouped ones,
    /// whose host picks it per adapter (`window_workgroup_size` in src/gpu/conv.rs).
    pub(crate) const fn workgroup_size(self) -> u32 {
        match self {
            Shader::Pointwise | Shader::Grouped => 32,
            Shader::Depthwise => 64,
        }
    }
}

/// Floats in one uniform weight window: `array<vec4<f32>, 4096>` in the shaders, 64 KiB,
/// the smallest `max_uniform_buffer_binding_size` WebGPU allows (tested against the WGSL).
pub(crate) const WEIGHT_WINDOW_FLOATS: usize = 16_384;

/// Override constants of one pipeline: `(name, value)` pairs, all small integers.
pub(crate) type Constants = Vec<(&'static str, u32)>;

/// A convolution's geometry as override constants (`K_H`, `K_W`, `STRIDE_*`, `DILATION_*`,
/// declared by the depthwise, grouped and tiled kernels), so that their tap arithmetic folds
/// and their tap loops unroll.
pub(crate) fn geometry(spec: &crate::spec::Conv2dSpec) -> Constants {
    vec![
        ("K_H", spec.kernel[0] as u32),
        ("K_W", spec.kernel[1] as u32),
        ("STRIDE_H", spec.stride[0] as u32),
        ("STRIDE_W", spec.stride[1] as u32),
        ("DILATION_H", spec.dilation[0] as u32),
        ("DILATION_W", spec.dilation[1] as u32),
    ]
}

/// The kind of `spec`'s activation and where a residual add joins it, as the override
/// constants `ACTIVATION` and `RESIDUAL` (shared.wgsl), set on every convolution pipeline:
/// the epilogue's switch then folds to one kind (the parameters stay uniform data, so there
/// is one pipeline per kind, not per value).
pub(crate) fn epilogue(spec: &crate::spec::Conv2dSpec, residual: Option<Residual>) -> Constants {
    vec![
        ("ACTIVATION", spec.activation.code()),
        ("RESIDUAL", Residual::code(residual)),
    ]
}

/// Whether a pipeline with `constants` adds a residual, and so binds the skip tensor.
fn has_skip(constants: &Constants) -> bool {
    constants
        .iter()
        .any(|&(name, value)| name == "RESIDUAL" && value != Residual::code(None))
}

/// A pipeline is a shader (named by its label) with its element types, specialised by its
/// override constants.
type PipelineKey = (&'static str, Storage, Constants);

/// The tiled matrix-product kernels (src/gpu/gemm.rs), which share `gemm_tile.wgsl` and
/// `TileParams` instead of the conv kernels' weight window and `ConvParams`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum TiledShader {
    /// A pointwise or grouped convolution with its weights in one storage buffer.
    ConvGemm,
    /// A depthwise + pointwise block in one kernel (src/gpu/fused.rs).
    FusedSeparable,
    /// The second pass of a split `ConvGemm` product (`reduce_splits` in conv_gemm.wgsl),
    /// which binds what `ConvGemm` binds.
    ReduceSplits,
}

impl TiledShader {
    /// Both, for tests that check each file.
    #[cfg(test)]
    pub(crate) const ALL: [TiledShader; 3] = [
        TiledShader::ConvGemm,
        TiledShader::FusedSeparable,
        TiledShader::ReduceSplits,
    ];

    /// The WGSL source ([`wgsl!`]): `gemm_tile.wgsl` (parameters, tiles, product, store)
    /// before the kernel's own file, with the skip binding or without ([`skip_source`]).
    pub(crate) const fn source(self, skip: bool) -> &'static str {
        match self {
            TiledShader::ConvGemm | TiledShader::ReduceSplits => {
                skip_source!(skip; "gemm_tile.wgsl", "conv_gemm.wgsl")
            }
            TiledShader::FusedSeparable => {
                skip_source!(skip; "gemm_tile.wgsl", "fused_separable.wgsl")
            }
        }
    }

    /// Label for wgpu objects and error messages.
    pub(crate) const fn label(self) -> &'static str {
        match self {
            TiledShader::ConvGemm => "conv_gemm",
            TiledShader::FusedSeparable => "fused_separable",
            TiledShader::ReduceSplits => "reduce_splits",
        }
    }

    /// The entry point in [`Self::source`].
    pub(crate) const fn entry_point(self) -> &'static str {
        match self {
            TiledShader::ConvGemm | TiledShader::FusedSeparable => "main",
            TiledShader::ReduceSplits => "reduce_splits",
        }
    }

    /// The shader whose bind-group layout this one uses.
    const fn layout_of(self) -> TiledShader {
        match self {
            TiledShader::ReduceSplits => TiledShader::ConvGemm,
            shader => shader,
        }
    }
}

fn storage(binding: u32, read_only: bool) -> wgpu::BindGroupLayoutEntry {
    wgpu::BindGroupLayoutEntry {
        binding,
        visibility: wgpu::ShaderStages::COMPUTE,
        ty: wgpu::BindingType::Buffer {
            ty: wgpu::BufferBindingType::Storage { read_only },
            has_dynamic_offset: false,
            min_binding_size: None,
        },
        count: None,
    }
}

fn uniform(binding: u32) -> wgpu::BindGroupLayoutEntry {
    wgpu::BindGroupLayoutEntry {
        binding,
        visibility: wgpu::ShaderStages::COMPUTE,
        ty: wgpu::BindingType::Buffer {
            ty: wgpu::BufferBindingType::Uniform,
            has_dynamic_offset: false,
            min_binding_size: None,
        },
        count: None,
    }
}

/// One WGSL file per op family, embedded at compile time, all with the bind-group layout of
/// [`OpPipelines`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum OpShader {
    Elementwise,
    Pool,
    Shuffle,
}

impl OpShader {
    /// All op shaders, for the tests that validate each file.
    #[cfg(test)]
    pub(crate) const ALL: [OpShader; 3] =
        [OpShader::Elementwise, OpShader::Pool, OpShader::Shuffle];

    /// The WGSL source: the op's file after `shared.wgsl` ([`wgsl!`]), without a skip.
    pub(crate) const fn source(self) -> &'static str {
        match self {
            OpShader::Elementwise => skip_source!(false; "elementwise.wgsl"),
            OpShader::Pool => skip_source!(false; "pool.wgsl"),
            OpShader::Shuffle => skip_source!(false; "shuffle.wgsl"),
        }
    }

    /// Label for wgpu objects and error messages.
    pub(crate) const fn label(self) -> &'static str {
        match self {
            OpShader::Elementwise => "elementwise",
            OpShader::Pool => "pool",
            OpShader::Shuffle => "shuffle",
        }
    }

    /// Invocations per workgroup; equals `WORKGROUP_SIZE` in the WGSL file (tested).
    pub(crate) const fn workgroup_size(self) -> u32 {
        64
    }
}

/// The op shaders' bind-group layout and lazily compiled pipelines, one per device (held by
/// its [`Pipelines`]). Layout: 0 `a` and 1 `b` read-only storage, 3 the output (read-write
/// storage), 4 the uniform params block; the numbers match the conv kernels' input, output
/// and params slots, and 2 is unused.
pub(crate) struct OpPipelines {
    pub(crate) layout: wgpu::BindGroupLayout,
    pipeline_layout: wgpu::PipelineLayout,
    cache: Mutex<HashMap<(OpShader, Precision), wgpu::ComputePipeline>>,
}

impl OpPipelines {
    pub(crate) fn new(device: &wgpu::Device) -> Self {
        let buffer = |binding: u32, ty: wgpu::BufferBindingType| wgpu::BindGroupLayoutEntry {
            binding,
            visibility: wgpu::ShaderStages::COMPUTE,
            ty: wgpu::BindingType::Buffer {
                ty,
                has_dynamic_offset: false,
                min_binding_size: None,
            },
            count: None,
        };
        let storage = |read_only| wgpu::BufferBindingType::Storage { read_only };
        let layout = device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
            label: Some("op.bind_group_layout"),
            entries: &[
                buffer(0, storage(true)),
                buffer(1, storage(true)),
                buffer(3, storage(false)),
                buffer(4, wgpu::BufferBindingType::Uniform),
            ],
        });
        let pipeline_layout = device.create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
            label: Some("op.pipeline_layout"),
            bind_group_layouts: &[Some(&layout)],
            immediate_size: 0,
        });
        Self {
            layout,
            pipeline_layout,
            cache: Mutex::new(HashMap::new()),
        }
    }

    /// The pipeline for `shader` on tensors of `precision`, compiled on first use and
    /// cached. Compilation errors come back as [`Error::Gpu`].
    pub(crate) fn get(
        &self,
        dev: &ScopedDevice,
        shader: OpShader,
        precision: Precision,
    ) -> Result<wgpu::ComputePipeline> {
        let mut cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(p) = cache.get(&(shader, precision)) {
            return Ok(p.clone());
        }
        let device = &dev.device;
        let source = Storage::of(precision).source(shader.source());
        let pipeline = dev.scoped("shader compilation", || {
            let module = device.create_shader_module(wgpu::ShaderModuleDescriptor {
                label: Some(shader.label()),
                source: wgpu::ShaderSource::Wgsl(source.into()),
            });
            device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
                label: Some(shader.label()),
                layout: Some(&self.pipeline_layout),
                module: &module,
                entry_point: Some("main"),
                compilation_options: wgpu::PipelineCompilationOptions::default(),
                cache: None,
            })
        })?;
        cache.insert((shader, precision), pipeline.clone());
        Ok(pipeline)
    }
}

/// What [`Pipelines::compile`] makes a pipeline from.
struct Source {
    label: &'static str,
    storage: Storage,
    /// The [`wgsl!`] source, before [`Storage::source`] adds the aliases.
    body: &'static str,
    entry_point: &'static str,
}
/// A bind-group layout and the pipeline layout made of it.
type Layouts = (wgpu::BindGroupLayout, wgpu::PipelineLayout);

/// The window kernels' layouts: 0 input, 1 weight window (uniform), 2 bias, 3 output,
/// 4 params, and with `skip` 7 the skip tensor of a residual add.
fn conv_layouts(device: &wgpu::Device, skip: bool) -> Layouts {
    let mut entries = vec![
        storage(0, true),
        uniform(1),
        storage(2, true),
        storage(3, false),
        uniform(4),
    ];
    if skip {
        entries.push(storage(SKIP_BINDING, true));
    }
    let layout = device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
        label: Some("conv.bind_group_layout"),
        entries: &entries,
    });
    let pipeline_layout = device.create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
        label: Some("conv.pipeline_layout"),
        bind_group_layouts: &[Some(&layout)],
        immediate_size: 0,
    });
    (layout, pipeline_layout)
}

/// The bind-group layouts and the lazily built pipelines.
pub(crate) struct Pipelines {
    /// Shared by the depthwise, pointwise and grouped kernels, without the skip binding.
    conv_layouts: Layouts,
    /// The same with the skip binding, made on first use (see [`Pipelines::conv_layout`]).
    conv_skip_layouts: Mutex<Option<Layouts>>,
    /// The tiled kernels' layouts without and with the skip binding, made on first use (see
    /// [`Pipelines::tiled_layout`]).
    tiled_layouts: Mutex<HashMap<(TiledShader, bool), Layouts>>,
    cache: Mutex<HashMap<PipelineKey, wgpu::ComputePipeline>>,
    /// The non-convolution op shaders, with their own layout (src/gpu/ops).
    pub(crate) ops: OpPipelines,
}

impl Pipelines {
    pub(crate) fn new(device: &wgpu::Device) -> Self {
        Self {
            conv_layouts: conv_layouts(device, false),
            conv_skip_layouts: Mutex::new(None),
            tiled_layouts: Mutex::new(HashMap::new()),
            cache: Mutex::new(HashMap::new()),
            ops: OpPipelines::new(device),
        }
    }

    /// The window kernels' bind-group layout, with the skip binding or without.
    ///
    /// # Errors
    /// [`crate::Error::Unsupported`] with the skip binding on a device that allows fewer than
    /// 4 storage buffers per shader stage.
    pub(crate) fn conv_layout(
        &self,
        dev: &ScopedDevice,
        skip: bool,
    ) -> Result<wgpu::BindGroupLayout> {
        self.window_layouts(dev, skip).map(|(layout, _)| layout)
    }

    /// The window kernels' layouts; those with the skip binding are made on first use, since
    /// they need a 4th storage buffer per stage, which a device may not allow (WebGPU and
    /// OpenGL ES guarantee 4 and more, a device may be made with fewer), and such a device
    /// must still run everything without a residual add.
    fn window_layouts(&self, dev: &ScopedDevice, skip: bool) -> Result<Layouts> {
        if !skip {
            return Ok(self.conv_layouts.clone());
        }
        let mut made = self
            .conv_skip_layouts
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if let Some(layouts) = made.as_ref() {
            return Ok(layouts.clone());
        }
        let allowed = dev.limits.max_storage_buffers_per_shader_stage;
        if allowed < 4 {
            return Err(crate::Error::Unsupported {
                reason: format!(
                    "a residual add binds 4 storage buffers (input, bias, output, skip); this \
                     device allows {allowed} (max_storage_buffers_per_shader_stage)"
                ),
            });
        }
        let device = &dev.device;
        let layouts = dev.scoped("bind-group layout", || conv_layouts(device, true))?;
        *made = Some(layouts.clone());
        Ok(layouts)
    }

    /// The pipeline for `shader` on tensors of `precision` specialised with `constants`,
    /// compiled on first use and cached. Compilation errors come back as
    /// [`crate::Error::Gpu`].
    pub(crate) fn get(
        &self,
        dev: &ScopedDevice,
        shader: Shader,
        precision: Precision,
        constants: &Constants,
    ) -> Result<wgpu::ComputePipeline> {
        let skip = has_skip(constants);
        let (_, layout) = self.window_layouts(dev, skip)?;
        let source = Source {
            label: shader.label(),
            storage: Storage::of(precision),
            body: shader.source(skip),
            entry_point: "main",
        };
        self.compile(dev, source, &layout, constants)
    }

    /// The pipeline for the tiled `shader` with element types `storage` specialised with
    /// `constants`, compiled on first use and cached.
    pub(crate) fn tiled(
        &self,
        dev: &ScopedDevice,
        shader: TiledShader,
        storage: Storage,
        constants: &Constants,
    ) -> Result<wgpu::ComputePipeline> {
        let skip = has_skip(constants);
        let (_, layout) = self.tiled_layouts(dev, shader, skip)?;
        let source = Source {
            label: shader.label(),
            storage,
            body: shader.source(skip),
            entry_point: shader.entry_point(),
        };
        self.compile(dev, source, &layout, constants)
    }

    /// The bind-group layout of the tiled `shader`, with the skip binding or without.
    ///
    /// # Errors
    /// Those of [`Pipelines::tiled`]'s layouts: [`crate::Error::Unsupported`] when the device
    /// allows too few storage buffers or invocations per workgroup.
    pub(crate) fn tiled_layout(
        &self,
        dev: &ScopedDevice,
        shader: TiledShader,
        skip: bool,
    ) -> Result<wgpu::BindGroupLayout> {
        self.tiled_layouts(dev, shader, skip)
            .map(|(layout, _)| layout)
    }

    /// The layouts of the tiled `shader`, made on first use: they need more storage buffers
    /// per stage than the conv kernels (4 and 6 against 3, one more with a skip tensor), more
    /// than some devices allow (OpenGL ES 3.1 guarantees 4), and such a device must still run
    /// everything else.
    ///
    /// # Errors
    /// [`crate::Error::Unsupported`] when the device allows too few storage buffers or
    /// invocations per workgroup.
    fn tiled_layouts(
        &self,
        dev: &ScopedDevice,
        shader: TiledShader,
        skip: bool,
    ) -> Result<Layouts> {
        let shader = shader.layout_of();
        let mut layouts = self.tiled_layouts.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(made) = layouts.get(&(shader, skip)) {
            return Ok(made.clone());
        }
        // Read-only storage bindings, then the output, then the parameters.
        let inputs = match shader {
            // input, weights, bias (ReduceSplits has ConvGemm's layout)
            TiledShader::ConvGemm | TiledShader::ReduceSplits => 3,
            // input, both halves' weights and biases
            TiledShader::FusedSeparable => 5,
        };
        let limits = &dev.limits;
        let invocations = TILED_WORKGROUP_SIZE;
        if limits.max_compute_invocations_per_workgroup < invocations
            || limits.max_compute_workgroup_size_x < invocations
        {
            return Err(crate::Error::Unsupported {
                reason: format!(
                    "the {} kernel runs {invocations} invocations per workgroup; this device \
                     allows {} (max_compute_invocations_per_workgroup, \
                     max_compute_workgroup_size_x = {})",
                    shader.label(),
                    limits.max_compute_invocations_per_workgroup,
                    limits.max_compute_workgroup_size_x
                ),
            });
        }
        let allowed = limits.max_storage_buffers_per_shader_stage;
        let storage_buffers = inputs + 1 + u32::from(skip);
        if storage_buffers > allowed {
            return Err(crate::Error::Unsupported {
                reason: format!(
                    "the {} kernel binds {storage_buffers} storage buffers{}; this device \
                     allows {allowed} (max_storage_buffers_per_shader_stage)",
                    shader.label(),
                    if skip { " with a skip tensor" } else { "" },
                ),
            });
        }
        let mut entries: Vec<_> = (0..inputs).map(|b| storage(b, true)).collect();
        entries.push(storage(inputs, false));
        entries.push(uniform(inputs + 1));
        if skip {
            entries.push(storage(SKIP_BINDING, true));
        }
        let device = &dev.device;
        let made = dev.scoped("bind-group layout", || {
            let layout = device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
                label: Some(shader.label()),
                entries: &entries,
            });
            let pipeline_layout = device.create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
                label: Some(shader.label()),
                bind_group_layouts: &[Some(&layout)],
                immediate_size: 0,
            });
            (layout, pipeline_layout)
        })?;
        layouts.insert((shader, skip), made.clone());
        Ok(made)
    }

    fn compile(
        &self,
        dev: &ScopedDevice,
        source: Source,
        layout: &wgpu::PipelineLayout,
        constants: &Constants,
    ) -> Result<wgpu::ComputePipeline> {
        let Source {
            label,
            storage,
            body,
            entry_point,
        } = source;
        let key = (label, storage, constants.clone());
        let mut cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(p) = cache.get(&key) {
            return Ok(p.clone());
        }
        let overrides: Vec<(&str, f64)> = constants
            .iter()
            .map(|&(name, value)| (name, f64::from(value)))
            .collect();
        let device = &dev.device;
        let pipeline = dev.scoped("shader compilation", || {
            let module = device.create_shader_module(wgpu::ShaderModuleDescriptor {
                label: Some(label),
                source: wgpu::ShaderSource::Wgsl(storage.source(body).into()),
            });
            device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
                label: Some(label),
                layout: Some(layout),
                module: &module,
                entry_point: Some(entry_point),
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
pub(crate) mod tests;
