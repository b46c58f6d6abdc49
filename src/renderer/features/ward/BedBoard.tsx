/**
 * The board of bed tiles, virtualised: only the rows in view (plus a little overscan) are in the
 * DOM, so a ward of 500 beds costs what the ~30 visible tiles cost. Tiles sit at fixed positions of
 * a grid whose column count follows the width; the board re-renders only when the bed list, its size
 * or the first visible row changes — never for a bed update (tiles subscribe to their own bed).
 */
import { useLayoutEffect, useRef, useState } from 'react';
import { useWard } from '../../stores/ward.js';
import { BedTile, TILE_HEIGHT, TILE_MIN_WIDTH } from './BedTile.js';

const GAP = 8;
const OVERSCAN_ROWS = 1;
const ROW = TILE_HEIGHT + GAP;

export function BedBoard() {
  const order = useWard((s) => s.order);
  const ref = useRef<HTMLDivElement>(null);
  const [size, setSize] = useState({ width: 0, height: 0 });
  const [firstRow, setFirstRow] = useState(0);

  useLayoutEffect(() => {
    const el = ref.current;
    if (!el) return;
    const measure = () => setSize((s) => (s.width === el.clientWidth && s.height === el.clientHeight ? s : { width: el.clientWidth, height: el.clientHeight }));
    measure();
    const ro = new ResizeObserver(measure);
    ro.observe(el);
    return () => ro.disconnect();
  }, []);

  const cols = Math.max(1, Math.floor((size.width + GAP) / (TILE_MIN_WIDTH + GAP)));
  const tileWidth = size.width ? Math.floor((size.width - (cols - 1) * GAP) / cols) : TILE_MIN_WIDTH;
  const rows = Math.ceil(order.length / cols);
  const visibleRows = Math.ceil((size.height || 800) / ROW) + 1;
  const from = Math.max(0, firstRow - OVERSCAN_ROWS);
  const to = Math.min(rows, firstRow + visibleRows + OVERSCAN_ROWS);

  const tiles = [];
  for (let r = from; r < to; r++) {
    for (let c = 0; c < cols; c++) {
      const key = order[r * cols + c];
      if (key === undefined) break;
      tiles.push(<BedTile key={key} bedKey={key} top={r * ROW} left={c * (tileWidth + GAP)} width={tileWidth} />);
    }
  }

  return (
    <div
      className="bed-board"
      ref={ref}
      onScroll={(e) => {
        const row = Math.floor(e.currentTarget.scrollTop / ROW);
        if (row !== firstRow) setFirstRow(row);
      }}
      data-testid="bed-board"
      data-beds={order.length}
      aria-label={`Beds (${order.length})`}
      role="region"
    >
      <div className="bed-board__inner" style={{ height: Math.max(0, rows * ROW - GAP) }}>
        {tiles}
      </div>
    </div>
  );
}
