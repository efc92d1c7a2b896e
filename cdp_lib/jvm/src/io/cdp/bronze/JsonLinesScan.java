package io.cdp.bronze;

import com.fasterxml.jackson.core.JsonFactory;
import com.fasterxml.jackson.core.JsonFactoryBuilder;
import com.fasterxml.jackson.core.JsonParser;
import com.fasterxml.jackson.core.JsonToken;
import com.fasterxml.jackson.core.json.JsonReadFeature;
import java.io.IOException;
import java.io.InputStream;
import java.io.Serializable;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import org.apache.hadoop.conf.Configuration;
import org.apache.hadoop.fs.FSDataInputStream;
import org.apache.hadoop.fs.FileSystem;
import org.apache.hadoop.fs.Path;
import org.apache.hadoop.io.compress.CompressionCodec;
import org.apache.hadoop.io.compress.CompressionCodecFactory;
import org.apache.spark.api.java.JavaSparkContext;
import org.apache.spark.api.java.function.Function;
import org.apache.spark.sql.catalyst.expressions.XXH64;
import org.apache.spark.sql.catalyst.expressions.json.JsonExpressionUtils;
import org.apache.spark.sql.catalyst.util.GenericArrayData;
import org.apache.spark.unsafe.Platform;
import org.apache.spark.unsafe.types.UTF8String;
import org.apache.spark.util.SerializableConfiguration;

/**
 * The key scan of bronze's JSON-lines files in one pass over their bytes, per file: the records
 * (non-blank lines), the lines with a top-level key outside the contract (drift), the lines the
 * JSON reader cannot be trusted with (not '{' first, or not UTF-8: odd) and the lines that are
 * not a JSON object (broken: their xxhash64 and their bytes).
 *
 * <p>It gives what the same scan in Spark SQL gives ({@code spark.read.text}, {@code trim},
 * {@code json_object_keys}, {@code is_valid_utf8}, {@code xxhash64}, grouped by file; that query
 * is the oracle of tests/test_bronze_json_scan.py), without the rows, the per-line key arrays
 * and the aggregation: lines are split as Hadoop's LineReader splits them (LF, CR or CRLF; a
 * UTF-8 BOM opening the file is not part of the first line), blank means empty after trimming
 * spaces, and a line is broken exactly when {@code json_object_keys} is null, which is Spark's
 * own function, called for every line the quick byte parser does not settle.
 *
 * <p>Files are cut into pieces of at most {@code pieceBytes}, one task each; a piece owns the
 * lines that start inside it. A compressed file (a Hadoop codec by its name, as the text reader
 * picks it: {@code .gz}, {@code .bz2}, ...) is one piece, read through its codec.
 */
public final class JsonLinesScan {
  private JsonLinesScan() {}

  /** The counts of one piece of one file. */
  public static final class Counts implements Serializable {
    private static final long serialVersionUID = 1L;
    final int file;
    long lines;
    long drift;
    long odd;
    long brokenBytes;
    long[] broken = new long[0];
    int nBroken;

    Counts(int file) {
      this.file = file;
    }

    void addBroken(long hash, int bytes) {
      if (nBroken == broken.length) {
        broken = Arrays.copyOf(broken, Math.max(16, nBroken * 2));
      }
      broken[nBroken++] = hash;
      brokenBytes += bytes;
    }

    void add(Counts other) {
      lines += other.lines;
      drift += other.drift;
      odd += other.odd;
      for (int i = 0; i < other.nBroken; i++) {
        addBroken(other.broken[i], 0);
      }
      brokenBytes += other.brokenBytes;
    }
  }

  /**
   * Scans {@code files} (Hadoop paths, one per line of the string) against the contract's
   * top-level {@code known} keys (one per line) and returns one line per file, in order:
   * {@code lines TAB drift TAB odd TAB brokenBytes TAB hash,hash,...}. {@code conf} is the
   * session's Hadoop configuration (as the file readers get it: {@code newHadoopConf()}).
   */
  public static String scan(JavaSparkContext jsc, Configuration conf, String files, String known,
      long pieceBytes) throws IOException {
    if (pieceBytes <= 0) {
      throw new IllegalArgumentException("pieceBytes must be positive: " + pieceBytes);
    }
    String[] paths = files.isEmpty() ? new String[0] : files.split("\n", -1);
    CompressionCodecFactory codecs = new CompressionCodecFactory(conf);
    List<long[]> pieces = new ArrayList<>();
    for (int i = 0; i < paths.length; i++) {
      Path path = new Path(paths[i]);
      long length = path.getFileSystem(conf).getFileStatus(path).getLen();
      if (length == 0) {
        continue;  // no bytes, no lines (Spark's file index leaves such files out too)
      }
      if (codecs.getCodec(path) != null) {
        pieces.add(new long[] {i, 0, Long.MAX_VALUE});  // decompressed from the start
        continue;
      }
      for (long start = 0; start < length; start += pieceBytes) {
        pieces.add(new long[] {i, start, Math.min(start + pieceBytes, length)});
      }
    }
    Counts[] out = new Counts[paths.length];
    for (int i = 0; i < paths.length; i++) {
      out[i] = new Counts(i);
    }
    if (!pieces.isEmpty()) {
      List<Counts> parts = jsc.parallelize(pieces, pieces.size())
          .map(new Piece(paths, known.isEmpty() ? new String[0] : known.split("\n", -1),
              new SerializableConfiguration(conf)))
          .collect();
      for (Counts part : parts) {
        out[part.file].add(part);
      }
    }
    StringBuilder sb = new StringBuilder();
    for (Counts c : out) {
      sb.append(c.lines).append('\t').append(c.drift).append('\t').append(c.odd).append('\t')
          .append(c.brokenBytes).append('\t');
      for (int i = 0; i < c.nBroken; i++) {
        if (i > 0) {
          sb.append(',');
        }
        sb.append(c.broken[i]);
      }
      sb.append('\n');
    }
    return sb.toString();
  }

  /** One task: the lines starting in {@code [start, end)} of one file. */
  static final class Piece implements Function<long[], Counts> {
    private static final long serialVersionUID = 1L;
    private final String[] paths;
    private final String[] known;
    private final SerializableConfiguration conf;

    Piece(String[] paths, String[] known, SerializableConfiguration conf) {
      this.paths = paths;
      this.known = known;
      this.conf = conf;
    }

    @Override
    public Counts call(long[] piece) throws IOException {
      int file = (int) piece[0];
      Path path = new Path(paths[file]);
      FileSystem fs = path.getFileSystem(conf.value());
      CompressionCodec codec = new CompressionCodecFactory(conf.value()).getCodec(path);
      try (FSDataInputStream raw = fs.open(path);
          InputStream in = codec == null ? raw : codec.createInputStream(raw)) {
        if (codec == null) {
          raw.seek(Math.max(0, piece[1] - 1));
        }
        return scanPiece(in, file, piece[1], piece[2], known);
      }
    }
  }

  /**
   * The counts of the lines of a file that start in [start, end); {@code in} is positioned at
   * {@code start - 1} (at 0 for the first piece), so the piece can tell whether it opens a line.
   */
  static Counts scanPiece(InputStream in, int file, long start, long end, String[] known)
      throws IOException {
    Counts counts = new Counts(file);
    Lines lines = new Lines(in, start);
    if (start > 0 && !lines.atLineStartAfter()) {
      lines.skipLine();  // the line running into this piece belongs to the one before
    } else if (start == 0) {
      lines.skipBom();
    }
    Keys keys = new Keys(known);
    // The first piece owns the file's first line even when a BOM is longer than the piece.
    boolean first = start == 0;
    while ((first || lines.position() < end) && lines.readLine()) {
      first = false;
      keys.line(lines.buf, lines.len, counts);
    }
    return counts;
  }

  /** Top-level keys of one line against the contract; the checks of scan_json_files. */
  static final class Keys {
    // json_object_keys' own factory settings (SharedFactory), for the byte parser.
    private static final JsonFactory FACTORY = new JsonFactoryBuilder()
        .enable(JsonReadFeature.ALLOW_UNESCAPED_CONTROL_CHARS)
        .enable(JsonReadFeature.ALLOW_SINGLE_QUOTES)
        .build();
    private final Set<String> known;

    Keys(String[] known) {
      this.known = new HashSet<>(Arrays.asList(known));
    }

    void line(byte[] buf, int len, Counts counts) throws IOException {
      UTF8String value = UTF8String.fromBytes(buf, 0, len);
      if (value.trim().numBytes() == 0) {
        return;  // a blank line is not a record
      }
      counts.lines++;
      boolean valid = value.isValid();
      if (buf[0] != '{' || !valid) {
        counts.odd++;
      }
      // The byte parser only where it reads what json_object_keys' reader reads: '{' first
      // (no BOM it would skip, no encoding to detect) and UTF-8 with no zero byte in 1..3.
      Boolean drift = valid && buf[0] == '{' && len >= 4 && buf[1] != 0 && buf[2] != 0
          && buf[3] != 0 ? quick(buf, len) : null;
      if (drift == null) {
        // Not settled by the byte parser: Spark's json_object_keys itself decides.
        GenericArrayData keys = JsonExpressionUtils.jsonObjectKeys(value);
        if (keys == null) {
          counts.addBroken(XXH64.hashUnsafeBytes(buf, Platform.BYTE_ARRAY_OFFSET, len, 42L), len);
          return;
        }
        drift = false;
        for (Object key : keys.array()) {
          if (!known.contains(key.toString())) {
            drift = true;
            break;
          }
        }
      }
      if (drift) {
        counts.drift++;
      }
    }

    /**
     * Whether a line of valid UTF-8 opening with no zero byte (so Jackson's byte parser reads
     * it as UTF-8, as json_object_keys' reader does) has a key outside the contract; null when
     * the parser fails, which json_object_keys then confirms.
     */
    private Boolean quick(byte[] buf, int len) {
      try (JsonParser parser = FACTORY.createParser(buf, 0, len)) {
        if (parser.nextToken() != JsonToken.START_OBJECT) {
          return null;
        }
        boolean drift = false;
        while (parser.nextValue() != null && parser.currentName() != null) {
          drift = drift || !known.contains(parser.currentName());
          parser.skipChildren();
        }
        return drift;
      } catch (IOException e) {
        return null;
      }
    }
  }

  /** Lines of a stream as Hadoop's LineReader splits them: LF, CR or CRLF. */
  static final class Lines {
    private final InputStream in;
    private final byte[] chunk = new byte[1 << 20];
    private int at;
    private int filled;
    private long chunkStart;
    byte[] buf = new byte[1 << 12];
    int len;

    Lines(InputStream in, long start) throws IOException {
      this.in = in;
      this.chunkStart = Math.max(0, start - 1);
      if (start > 0) {
        next();  // the byte before the piece: whether the piece opens on a line start
      }
    }

    private byte previous = '\n';
    private boolean hasPrevious;

    long position() {
      return chunkStart + at;
    }

    private int peek() throws IOException {
      if (at == filled) {
        chunkStart += filled;
        at = 0;
        filled = 0;
        int n;
        while ((n = in.read(chunk, 0, chunk.length)) == 0) {
          // a stream may return nothing without being at its end
        }
        if (n < 0) {
          return -1;
        }
        filled = n;
      }
      return chunk[at] & 0xff;
    }

    private int next() throws IOException {
      int c = peek();
      if (c >= 0) {
        at++;
        previous = (byte) c;
        hasPrevious = true;
      }
      return c;
    }

    /** Whether the current position opens a line (the piece was entered at start - 1). */
    boolean atLineStartAfter() throws IOException {
      if (!hasPrevious || previous == '\n') {
        return true;
      }
      if (previous == '\r') {
        if (peek() == '\n') {
          next();  // the LF of a CRLF: the line starts after it
        }
        return true;
      }
      return false;
    }

    void skipLine() throws IOException {
      readLine();
    }

    /** At the start of the stream: skips a UTF-8 BOM, however few bytes a read returns. */
    void skipBom() throws IOException {
      int n;
      while (filled < 3 && (n = in.read(chunk, filled, chunk.length - filled)) >= 0) {
        filled += n;
      }
      if (filled >= 3 && (chunk[0] & 0xff) == 0xEF && (chunk[1] & 0xff) == 0xBB
          && (chunk[2] & 0xff) == 0xBF) {
        at = 3;
      }
    }

    /** The next line into {@code buf[0, len)}; false at the end of the stream. */
    boolean readLine() throws IOException {
      len = 0;
      int c = peek();
      if (c < 0) {
        return false;
      }
      while (true) {
        // Copy up to the next terminator of this chunk in one go.
        int i = at;
        while (i < filled && chunk[i] != '\n' && chunk[i] != '\r') {
          i++;
        }
        append(i - at);
        at = i;
        c = next();
        if (c < 0 || c == '\n') {
          return true;
        }
        if (c == '\r') {
          if (peek() == '\n') {
            next();
          }
          return true;
        }
        // c was the chunk's refill: the byte read belongs to the line
        at--;
      }
    }

    private void append(int n) {
      if (n <= 0) {
        return;
      }
      if (len + n > buf.length) {
        buf = Arrays.copyOf(buf, Math.max(buf.length * 2, len + n));
      }
      System.arraycopy(chunk, at, buf, len, n);
      len += n;
    }
  }
}
