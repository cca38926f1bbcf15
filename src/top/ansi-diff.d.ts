/** The part of ansi-diff (no bundled types) the live view uses. */
declare module 'ansi-diff' {
  interface Size {
    width?: number;
    height?: number;
  }
  interface AnsiDiff {
    /** the escape sequences that turn the previous frame into this one */
    update(frame: string | Buffer, opts?: { moveTo?: [number, number] }): Buffer;
    resize(size: Size): void;
  }
  function ansiDiff(size?: Size): AnsiDiff;
  export = ansiDiff;
}
