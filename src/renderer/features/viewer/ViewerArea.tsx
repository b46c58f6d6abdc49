import { EmptyState } from '../../components/ui.js';

/** DTI second-read viewer: filled by the imaging module. */
export function ViewerArea() {
  return (
    <EmptyState title="DTI viewer" testId="area-viewer">
      <p>DTI viewer — import a diffusion series to begin. Arrives with the imaging module.</p>
      <p className="muted">Diffusion series, fractional anisotropy maps, tractography and the second-read report will appear here.</p>
    </EmptyState>
  );
}
