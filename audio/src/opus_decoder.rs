//! Opus decoding for symphonia, backed by the pure-Rust `opus-pure` decoder.
//!
//! symphonia 0.6 demuxes Ogg Opus (it reads `OpusHead` and the granule
//! positions, and marks each packet's end trim) but has no Opus decoder. This
//! registers one, so Opus files go through the same decode loop as every
//! other format. The demuxer leaves the header's pre-skip to the decoder, so
//! it is dropped here, across as many packets as it spans.

use symphonia::core::audio::{
    AsGenericAudioBufferRef, AudioBuffer, AudioMut, AudioSpec, GenericAudioBufferRef, layouts,
};
use symphonia::core::codecs::CodecInfo;
use symphonia::core::codecs::audio::well_known::CODEC_ID_OPUS;
use symphonia::core::codecs::audio::{AudioCodecParameters, AudioDecoder, AudioDecoderOptions, FinalizeResult};
use symphonia::core::codecs::registry::{RegisterableAudioDecoder, SupportedAudioCodec};
use symphonia::core::errors::{Error, Result};
use symphonia::core::packet::PacketRef;

use opus_pure::MAX_PACKET_SAMPLES;

/// Opus always decodes at 48 kHz here (RFC 7845 granules count 48 kHz samples).
const RATE: u32 = 48_000;

/// A symphonia [`AudioDecoder`] for Opus (mapping family 0: mono or stereo).
pub(crate) struct OpusPureDecoder {
    params: AudioCodecParameters,
    decoder: opus_pure::OpusDecoder,
    buf: AudioBuffer<f32>,
    /// Interleaved output of one packet.
    pcm: Vec<f32>,
    channels: usize,
    /// Pre-skip samples not yet dropped.
    skip: usize,
}

impl OpusPureDecoder {
    fn try_new(params: &AudioCodecParameters) -> Result<Self> {
        let head = params.extra_data.as_deref().ok_or(Error::DecodeError("opus: no OpusHead"))?;
        let head = Head::parse(head)?;
        let layout = match head.channels {
            1 => layouts::CHANNEL_LAYOUT_MONO,
            2 => layouts::CHANNEL_LAYOUT_STEREO,
            _ => return Err(Error::Unsupported("more than 2 Opus channels")),
        };
        let channels = usize::from(head.channels);
        let mut decoder = opus_pure::OpusDecoder::new(RATE as i32, channels).map_err(opus_error)?;
        // RFC 7845 §5.1: players SHOULD apply the header's output gain, so the
        // loudness measured here is the loudness a player produces.
        decoder.gain_q8 = i32::from(head.output_gain_q8);
        Ok(Self {
            params: params.clone(),
            decoder,
            buf: AudioBuffer::new(AudioSpec::new(RATE, layout), MAX_PACKET_SAMPLES),
            pcm: vec![0.0; MAX_PACKET_SAMPLES * channels],
            channels,
            skip: usize::from(head.pre_skip),
        })
    }
}

impl AudioDecoder for OpusPureDecoder {
    fn reset(&mut self) {
        // A reset only follows a seek, which this crate never does; restarting
        // the decoder state is still the correct response.
        let _ = self.decoder.reset_state();
    }

    fn codec_info(&self) -> &CodecInfo {
        &SUPPORTED[0].info
    }

    fn codec_params(&self) -> &AudioCodecParameters {
        &self.params
    }

    fn decode_ref(&mut self, packet: &PacketRef<'_>) -> Result<GenericAudioBufferRef<'_>> {
        self.buf.clear();
        if packet.data.is_empty() {
            return Err(Error::DecodeError("opus: empty packet"));
        }
        let frames = self.decoder.decode(packet.data, MAX_PACKET_SAMPLES, &mut self.pcm).map_err(opus_error)?;
        let frames = frames.min(MAX_PACKET_SAMPLES);
        self.buf.render_uninit(Some(frames));
        self.buf.copy_from_slice_interleaved(&&self.pcm[..frames * self.channels]);
        let skip = self.skip.min(frames);
        self.skip -= skip;
        let start = skip.saturating_add(packet.trim_start.get() as usize);
        self.buf.trim(start, packet.trim_end.get() as usize);
        Ok(self.buf.as_generic_audio_buffer_ref())
    }

    fn finalize(&mut self) -> FinalizeResult {
        FinalizeResult::default()
    }

    fn last_decoded(&self) -> GenericAudioBufferRef<'_> {
        self.buf.as_generic_audio_buffer_ref()
    }
}

impl RegisterableAudioDecoder for OpusPureDecoder {
    fn try_registry_new(params: &AudioCodecParameters, _: &AudioDecoderOptions) -> Result<Box<dyn AudioDecoder>> {
        Ok(Box::new(Self::try_new(params)?))
    }

    fn supported_codecs() -> &'static [SupportedAudioCodec] {
        &SUPPORTED
    }
}

static SUPPORTED: [SupportedAudioCodec; 1] = [SupportedAudioCodec {
    id: CODEC_ID_OPUS,
    info: CodecInfo { short_name: "opus", long_name: "Opus (opus-pure)", profiles: &[] },
}];

/// The fields of an `OpusHead` packet (RFC 7845 §5.1) that decoding needs.
struct Head {
    channels: u8,
    pre_skip: u16,
    output_gain_q8: i16,
}

impl Head {
    fn parse(packet: &[u8]) -> Result<Self> {
        if packet.len() < 19 || &packet[..8] != b"OpusHead" {
            return Err(Error::DecodeError("opus: malformed OpusHead"));
        }
        if packet[8] >> 4 != 0 {
            return Err(Error::Unsupported("Opus header version above 0.x"));
        }
        if packet[18] != 0 {
            return Err(Error::Unsupported("Opus channel mapping families other than 0"));
        }
        Ok(Self {
            channels: packet[9],
            pre_skip: u16::from_le_bytes([packet[10], packet[11]]),
            output_gain_q8: i16::from_le_bytes([packet[16], packet[17]]),
        })
    }
}

fn opus_error(error: opus_pure::Error) -> Error {
    match error {
        opus_pure::Error::InvalidPacket(why) | opus_pure::Error::InvalidStream(why) => Error::DecodeError(why),
        opus_pure::Error::InvalidArgument(why) | opus_pure::Error::Internal(why) => Error::DecodeError(why),
        opus_pure::Error::Io(e) => Error::IoError(e),
        _ => Error::DecodeError("opus: decoder error"),
    }
}
