// A run's recording as one file, and back (issue: record, replay, export): what the timeline
// keeps (the run's `started` and its frames, whole) saved as JSON, and opened again later, with
// no server run, to replay on the page. Format "shiftscope-recording", version 1:
//
//   {"format": "shiftscope-recording", "version": 1, "saved_at": ISO time,
//    "started": the run's `started` message, "frames": [frame messages, oldest first]}
//
// (docs/protocol.md, "Saved files"). A file this page cannot replay is refused with the reason.

export const RECORDING_FORMAT = "shiftscope-recording";
export const RECORDING_VERSION = 1;
export const MAX_RECORDING_BYTES = 200 * 1024 * 1024;

/** The recording's text. */
export function recordingText(started, frames) {
  return JSON.stringify({
    format: RECORDING_FORMAT,
    version: RECORDING_VERSION,
    saved_at: new Date().toISOString(),
    started,
    frames,
  });
}

/** A file name for the recording of `started` up to its last frame. */
export function recordingName(started, frames) {
  const config = started?.config ?? {};
  return `shiftscope-${config.arch ?? "run"}-${config.norm ?? "none"}-step${frames.at(-1)?.step ?? 0}.recording.json`;
}

/** {started, frames} of a recording's text; throws an Error saying what is wrong with it. */
export function parseRecording(text) {
  let record;
  try {
    record = JSON.parse(text);
  } catch {
    throw new Error("the file is not JSON: not a ShiftScope recording");
  }
  if (!record || typeof record !== "object" || record.format !== RECORDING_FORMAT) {
    const other = record?.format ? ` (it is "${record.format}": the statistics, which have no histograms to replay)` : "";
    throw new Error(`the file is not a ShiftScope recording${other}`);
  }
  if (!Number.isInteger(record.version) || record.version > RECORDING_VERSION) {
    throw new Error(`the recording is version ${record.version}; this page reads version ${RECORDING_VERSION} and older`);
  }
  const { started, frames } = record;
  if (!started || started.type !== "started" || !Array.isArray(started.layers)) {
    throw new Error("the recording has no run (its 'started' is missing)");
  }
  if (!Array.isArray(frames) || frames.length === 0) throw new Error("the recording has no frames");
  for (const [i, frame] of frames.entries()) {
    if (!frame || frame.type !== "frame" || !Number.isInteger(frame.step) || !Array.isArray(frame.layers)) {
      throw new Error(`frame ${i + 1} of the recording is not a frame`);
    }
  }
  return { started, frames };
}

/** The text of a dropped or picked file; throws on one too large to be a recording. */
export async function readRecordingFile(file) {
  if (file.size > MAX_RECORDING_BYTES) {
    throw new Error(`the file is ${Math.round(file.size / 2 ** 20)} MB; a recording is at most ${MAX_RECORDING_BYTES / 2 ** 20} MB`);
  }
  return file.text();
}
